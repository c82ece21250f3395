# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The cache store: a microgrid's dispatches as last synced, in SQLite (WAL).

Every write is one SQLite transaction, so a process killed at any moment leaves
either the state before or the state after it. A file that is not a usable cache
is moved aside and replaced (`_file.py` says when); so is one whose contents turn
out damaged when loaded, or synced "in the future" after a clock reset.

The store writes what it is given when it is given it: batching stream changes
into few transactions is the caller's (the scheduler's `CacheWriter` collects
them and hands over a batch per write). A full sync writes only what differs from
what the file holds.

Besides the dispatches, every write records two instants: `synced_at`, the last
full sync with the service the dispatches come from, and `handled_until`, the
last instant the writing process had brought its schedule to (see
`CachedState.handled_until`). A process that starts from the file counts the
runs that closed after `handled_until` as missed.

The store is synchronous and not thread-safe: one thread at a time may use it
(the scheduler's `CacheLink` uses it from one worker thread only). Every method
that reads the clock also takes the instant as an argument, so that such a
thread never has to call the caller's clock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from frequenz.client.common.microgrid import MicrogridId

from .._dispatch import Dispatch
from .._gc import gc_paused
from ._codec import COLUMNS, SELECT, CorruptRow, decode_all, encode
from ._file import (
    CacheUnavailable,
    Rejected,
    connect,
    is_busy,
    move_aside,
    quick_check,
    read_meta,
    rejection_reason,
    validate,
    write_meta,
)

_logger = logging.getLogger(__name__)

FUTURE_TOLERANCE: Final = timedelta(seconds=1)
"""How far in the future a sync instant may lie before the clock is distrusted."""

_UPSERT: Final = (
    f"INSERT OR REPLACE INTO dispatches ({', '.join(COLUMNS)})"
    f" VALUES ({', '.join('?' * len(COLUMNS))})"
)
_SELECT: Final = f"SELECT {SELECT} FROM dispatches"


def _utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


@dataclass(frozen=True)
class CachedState:
    """What a cache file holds."""

    dispatches: list[Dispatch]
    """The dispatches held at the last write."""

    synced_at: datetime
    """When the last full sync with the service was written."""

    age: timedelta
    """How long ago that was, when the cache was loaded."""

    handled_until: datetime
    """The last instant the process that wrote the file had evaluated its
    schedule at (its runs up to then were sent or counted missed by it), as
    recorded with its last write; the sync instant for a file that has no such
    record. Never before `synced_at` nor after the instant of the load."""


class DispatchCache:
    """A microgrid's cached dispatches in one SQLite file."""

    def __init__(
        self,
        path: Path,
        microgrid_id: MicrogridId,
        connection: sqlite3.Connection,
        *,
        clock: Callable[[], datetime],
        fresh: bool,
    ) -> None:
        """Wrap an open, validated cache file; use `DispatchCache.open()`.

        Args:
            path: The file.
            microgrid_id: The microgrid it belongs to.
            connection: The open connection to it.
            clock: Returns the current time.
            fresh: Whether the file was just created (so it holds nothing).
        """
        self._path = path
        self._microgrid_id = microgrid_id
        self._db: sqlite3.Connection | None = connection
        self._clock = clock
        # What the file holds, when known: lets a full sync write only the
        # differences. None means unknown (the next full sync rewrites all).
        self._written: dict[int, Dispatch] | None = {} if fresh else None
        self.transactions = 0
        """How many write transactions were committed."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        microgrid_id: MicrogridId | int,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> DispatchCache:
        """Open the cache file of a microgrid, creating it if needed.

        A file that is not a usable cache of this microgrid and library version
        is logged, renamed aside (`<name>.<reason>-<time>`) and replaced by an
        empty cache.

        Args:
            path: The cache file.
            microgrid_id: The microgrid whose dispatches it holds.
            clock: Returns the current (UTC) time.

        Returns:
            The open cache.

        Raises:
            CacheUnavailable: If the file cannot be opened, created or moved aside.
        """
        file = Path(path)
        microgrid = MicrogridId(int(microgrid_id))
        for _attempt in range(2):
            connection: sqlite3.Connection | None = None
            try:
                connection, fresh = connect(file)
                fresh = validate(connection, file, microgrid) or fresh
            except (Rejected, sqlite3.DatabaseError) as error:
                if connection is not None:
                    connection.close()
                if is_busy(error):
                    # In use by another writer: not damaged, so never moved aside.
                    raise CacheUnavailable(f"{file}: {error}") from error
                move_aside(file, rejection_reason(error), str(error))
                continue
            return cls(
                file,
                microgrid,
                connection,
                clock=clock,
                fresh=fresh,
            )
        raise CacheUnavailable(f"{file}: cannot create a usable cache file")

    @property
    def path(self) -> Path:
        """The cache file."""
        return self._path

    def load(
        self, max_age: timedelta | None = None, *, now: datetime | None = None
    ) -> CachedState | None:
        """Read the cached dispatches.

        Args:
            max_age: Refuse a cache whose last full sync is older than this.
            now: The current time; read from the clock if None.

        Returns:
            The cached state, or None when there is none to act on: no full sync
                was ever written, the file is damaged or synced in the future
                (both moved aside), or it is older than `max_age`.
        """
        db = self._connection()
        now = self._clock() if now is None else now
        try:
            handled_text = read_meta(db, "handled_until")
            synced_text = read_meta(db, "synced_at")
            if synced_text is None:
                return None
            synced_at = datetime.fromisoformat(synced_text)
            if synced_at.tzinfo is None:
                raise Rejected("corrupt", f"naive sync instant {synced_text!r}")
            handled_until = (
                synced_at
                if handled_text is None
                else max(synced_at, min(_aware(handled_text), now))
            )
            if synced_at > now + FUTURE_TOLERANCE:
                raise Rejected(
                    "future",
                    f"synced at {synced_at.isoformat()}, after the current time"
                    f" {now.isoformat()} (was the clock reset?)",
                )
            quick_check(db)
            with gc_paused():
                dispatches = decode_all(db.execute(_SELECT).fetchall())
        except (Rejected, CorruptRow, sqlite3.DatabaseError, ValueError) as error:
            if is_busy(error):
                _logger.error(
                    "Dispatch cache %s is busy: not used (%s)", self._path, error
                )
                return None
            self._replace_file(rejection_reason(error), str(error))
            return None
        age = now - synced_at
        if max_age is not None and age > max_age:
            _logger.warning(
                "Dispatch cache %s is %s old, older than the %s allowed: not used",
                self._path,
                age,
                max_age,
            )
            return None
        self._written = {int(dispatch.id): dispatch for dispatch in dispatches}
        return CachedState(dispatches, synced_at, age, handled_until)

    def replace_all(
        self,
        dispatches: Iterable[Dispatch],
        synced_at: datetime,
        *,
        handled_until: datetime | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Make the file hold exactly these dispatches, synced at this instant.

        One transaction. Only dispatches that differ from what the file holds
        are written.

        Args:
            dispatches: Every dispatch held after a full sync.
            synced_at: When the full sync happened.
            handled_until: The instant the schedule was evaluated at last; the
                sync instant if None.
            at: The current time, recorded as the write's instant; read from
                the clock if None.

        Returns:
            Whether the write was committed (a failure is logged).

        Raises:
            ValueError: If `synced_at` is naive.
        """
        if synced_at.tzinfo is None:
            raise ValueError(f"synced_at must be timezone-aware, got {synced_at!r}")
        wanted = {int(dispatch.id): dispatch for dispatch in dispatches}
        written = self._written
        if written is None:
            upserts = list(wanted.values())
            removed: list[int] | None = None  # everything not upserted
        else:
            upserts = [
                dispatch
                for key, dispatch in wanted.items()
                if (old := written.get(key)) is not dispatch and old != dispatch
            ]
            removed = [key for key in written if key not in wanted]

        def write(db: sqlite3.Connection) -> None:
            if removed is None:
                db.execute("DELETE FROM dispatches")
            else:
                db.executemany(
                    "DELETE FROM dispatches WHERE id = ?", [(k,) for k in removed]
                )
            db.executemany(_UPSERT, map(encode, upserts))
            write_meta(db, "synced_at", synced_at.isoformat())

        handled = synced_at if handled_until is None else handled_until
        with gc_paused():
            committed = self._transaction(write, at, handled)
        if committed:
            self._written = wanted
        return committed

    def write_changes(
        self,
        changes: Mapping[int, Dispatch | None],
        *,
        handled_until: datetime | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Write stream changes (and the instants) in one transaction, now.

        Args:
            changes: Per dispatch id, the version now held, or None if deleted.
            handled_until: The instant the schedule was evaluated at last, if
                known.
            at: The current time, recorded as the write's instant; read from
                the clock if None.

        Returns:
            Whether the write was committed (a failure is logged).
        """
        written = self._written
        upserts = [
            dispatch
            for key, dispatch in changes.items()
            if dispatch is not None
            and (written is None or written.get(key) is not dispatch)
        ]
        deletes = [(key,) for key, dispatch in changes.items() if dispatch is None]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_UPSERT, map(encode, upserts))
            db.executemany("DELETE FROM dispatches WHERE id = ?", deletes)

        if not self._transaction(write, at, handled_until):
            return False
        if self._written is not None:
            for key, dispatch in changes.items():
                if dispatch is None:
                    self._written.pop(key, None)
                else:
                    self._written[key] = dispatch
        return True

    def close(self) -> None:
        """Close the file; later calls other than `close()` raise RuntimeError."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # Internals

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"dispatch cache {self._path} is closed")
        return self._db

    def _transaction(
        self,
        write: Callable[[sqlite3.Connection], None],
        at: datetime | None = None,
        handled_until: datetime | None = None,
    ) -> bool:
        db = self._connection()
        at = self._clock() if at is None else at
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                write(db)
                write_meta(db, "written_at", at.isoformat())
                if handled_until is not None:
                    write_meta(db, "handled_until", handled_until.isoformat())
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            # A cache that cannot be written must not affect the schedule: the
            # next write tries again, and the next full sync rewrites everything.
            self._written = None
            _logger.error("Cannot write dispatch cache %s: %s", self._path, error)
            return False
        self.transactions += 1
        return True

    def _replace_file(self, reason: str, details: str) -> None:
        db = self._connection()
        db.close()
        self._db = None
        move_aside(self._path, reason, details)
        try:
            connection, _ = connect(self._path)
        except sqlite3.Error as error:
            raise CacheUnavailable(f"{self._path}: {error}") from error
        try:
            validate(connection, self._path, self._microgrid_id)
        except (Rejected, sqlite3.DatabaseError) as error:
            connection.close()
            raise CacheUnavailable(f"{self._path}: {error}") from error
        self._db = connection
        self._written = {}


def _aware(text: str) -> datetime:
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise Rejected("corrupt", f"naive instant {text!r}")
    return instant
