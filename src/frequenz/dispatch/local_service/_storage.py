# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""SQLite persistence for dispatches.

`DispatchStorage` is synchronous and does one transaction per public method.
`AsyncDispatchStorage` confines it to a single worker thread: SQLite
connections must not be shared between threads, and a single thread also
means a read can never observe another request's half-done transaction on the
shared connection.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TypeVar

from frequenz.api.dispatch.v1.dispatch_pb2 import DispatchData

from ._convert import DATA_COLUMNS, StoredDispatch, data_to_columns, row_to_stored

_T = TypeVar("_T")

SCHEMA_VERSION = 2
"""Version stored in `PRAGMA user_version`; bump it with every schema change.

1: dispatches. 2: nonces of signed requests (a version 1 file is upgraded).
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dispatches (
    -- AUTOINCREMENT (not just INTEGER PRIMARY KEY) so that ids are never
    -- reused, not even the highest one after it has been deleted.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    microgrid_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    start_time_us INTEGER NOT NULL,
    duration_s INTEGER,
    is_active INTEGER NOT NULL,
    is_dry_run INTEGER NOT NULL,
    target BLOB NOT NULL,
    payload BLOB NOT NULL,
    recurrence BLOB NOT NULL,
    create_time_us INTEGER NOT NULL,
    update_time_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dispatches_by_microgrid ON dispatches (microgrid_id, id);
-- Nonces of signed requests still inside the signature window: kept with the
-- data so that a restart does not accept a replay of a recorded request.
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
"""

_SELECT = (
    "SELECT id, microgrid_id, create_time_us, update_time_us, "
    + ", ".join(DATA_COLUMNS)
    + " FROM dispatches"
)

Database = str | os.PathLike[str]
"""A database file path, or `":memory:"` for a private in-memory database."""


class StorageError(RuntimeError):
    """The database cannot be used (for example, it has a newer schema)."""


def _create_private(database: Database) -> None:
    """Create a missing database file readable by its owner only (0600).

    SQLite gives the `-wal` and `-shm` files the permissions of the database
    file, so they are private too. An existing file keeps its permissions.
    """
    if os.fspath(database) == ":memory:":
        return
    # Anything else (e.g. a missing folder) SQLite reports in its own words.
    with suppress(OSError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


class DispatchStorage:
    """Dispatches in an SQLite database; each public method is one transaction.

    Instances are not thread-safe; use them from one thread only.
    """

    def __init__(self, database: Database) -> None:
        """Open (and if needed create) the database.

        Args:
            database: File path, or `":memory:"`.

        Raises:
            StorageError: If the database was written by a newer schema version.
        """
        _create_private(database)
        # Autocommit mode: transactions are opened explicitly in `_transaction`,
        # so nothing is ever left pending between two requests.
        self._conn = sqlite3.connect(database, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            # WAL keeps readers of other processes (e.g. the sqlite3 shell) from
            # blocking writes; FULL sync makes every commit durable on return.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"database schema version {version} is newer than the "
                    f"supported version {SCHEMA_VERSION}"
                )
            # One script, one transaction: `executescript()` would commit a
            # transaction opened separately before running the script.
            self._conn.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction, rolled back on any error.

        Yields:
            The connection to use inside the transaction.
        """
        # IMMEDIATE takes the write lock up front, so a read-modify-write cannot
        # be interleaved with a writer from another process.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _fetch(
        self, conn: sqlite3.Connection, microgrid_id: int, dispatch_id: int
    ) -> StoredDispatch | None:
        row = conn.execute(
            _SELECT + " WHERE microgrid_id = ? AND id = ?", (microgrid_id, dispatch_id)
        ).fetchone()
        return None if row is None else row_to_stored(row)

    def insert(
        self, microgrid_id: int, data: DispatchData, now_us: int
    ) -> StoredDispatch:
        """Store a new dispatch.

        Args:
            microgrid_id: The microgrid it belongs to.
            data: The (already validated) dispatch data.
            now_us: The creation time, in microseconds since the epoch.

        Returns:
            The stored dispatch with its new id.
        """
        columns = ("microgrid_id", "create_time_us", "update_time_us", *DATA_COLUMNS)
        placeholders = ", ".join("?" for _ in columns)
        with self._transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO dispatches ({', '.join(columns)}) "
                f"VALUES ({placeholders})",
                (microgrid_id, now_us, now_us, *data_to_columns(data)),
            )
            dispatch_id = cursor.lastrowid
            assert dispatch_id is not None
            stored = self._fetch(conn, microgrid_id, dispatch_id)
        assert stored is not None
        return stored

    def get(self, microgrid_id: int, dispatch_id: int) -> StoredDispatch | None:
        """Look up one dispatch.

        Args:
            microgrid_id: The microgrid it must belong to.
            dispatch_id: Its id.

        Returns:
            The dispatch, or `None` if there is none with that id in that microgrid.
        """
        return self._fetch(self._conn, microgrid_id, dispatch_id)

    def list(self, microgrid_id: int) -> list[StoredDispatch]:
        """Return every dispatch of a microgrid.

        Args:
            microgrid_id: The microgrid.

        Returns:
            The dispatches, by ascending id.
        """
        rows = self._conn.execute(
            _SELECT + " WHERE microgrid_id = ? ORDER BY id", (microgrid_id,)
        ).fetchall()
        return [row_to_stored(row) for row in rows]

    def update(
        self,
        microgrid_id: int,
        dispatch_id: int,
        change: Callable[[DispatchData], DispatchData],
        now_us: int,
    ) -> StoredDispatch | None:
        """Change a dispatch atomically.

        Args:
            microgrid_id: The microgrid it must belong to.
            dispatch_id: Its id.
            change: Computes the new data from the current data; it runs inside
                the transaction, and any exception it raises aborts the update
                and leaves the stored data untouched.
            now_us: The update time; if it is not after the previous update
                time it is bumped by one microsecond past it, so update times of
                a dispatch are strictly increasing even if the clock is not.

        Returns:
            The updated dispatch, or `None` if there is no such dispatch.
        """
        with self._transaction() as conn:
            current = self._fetch(conn, microgrid_id, dispatch_id)
            if current is None:
                return None
            new_data = change(current.data)
            update_time_us = max(now_us, current.update_time_us + 1)
            assignments = ", ".join(f"{column} = ?" for column in DATA_COLUMNS)
            conn.execute(
                f"UPDATE dispatches SET {assignments}, update_time_us = ? WHERE id = ?",
                (*data_to_columns(new_data), update_time_us, dispatch_id),
            )
            updated = self._fetch(conn, microgrid_id, dispatch_id)
        return updated

    def delete(self, microgrid_id: int, dispatch_id: int) -> StoredDispatch | None:
        """Delete a dispatch.

        Args:
            microgrid_id: The microgrid it must belong to.
            dispatch_id: Its id.

        Returns:
            The dispatch as it was before deletion, or `None` if there was none.
        """
        with self._transaction() as conn:
            current = self._fetch(conn, microgrid_id, dispatch_id)
            if current is not None:
                conn.execute("DELETE FROM dispatches WHERE id = ?", (dispatch_id,))
        return current

    def remember_nonce(self, nonce: str, expires_at: float, now: float) -> None:
        """Store an accepted nonce and forget the expired ones.

        Args:
            nonce: The nonce.
            expires_at: When it may be forgotten, in UNIX seconds.
            now: The current time, in UNIX seconds.
        """
        with self._transaction() as conn:
            conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT OR REPLACE INTO nonces (nonce, expires_at) VALUES (?, ?)",
                (nonce, expires_at),
            )

    def live_nonces(self, now: float) -> Sequence[tuple[str, float]]:
        """Return the stored nonces that have not expired.

        Args:
            now: The current time, in UNIX seconds.

        Returns:
            `(nonce, expires_at)` pairs, by increasing expiry.
        """
        rows = self._conn.execute(
            "SELECT nonce, expires_at FROM nonces WHERE expires_at > ? "
            "ORDER BY expires_at",
            (now,),
        ).fetchall()
        return [(row["nonce"], row["expires_at"]) for row in rows]


class AsyncDispatchStorage:
    """Runs a `DispatchStorage` on its own single worker thread."""

    def __init__(self, database: Database) -> None:
        """Prepare the storage; nothing is opened until `open()`.

        Args:
            database: File path, or `":memory:"`.
        """
        self._database = database
        self._executor: ThreadPoolExecutor | None = None
        self._storage: DispatchStorage | None = None

    async def open(self) -> None:
        """Open the database on the worker thread."""
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="dispatch-sqlite"
        )
        try:
            self._storage = await self._submit(
                functools.partial(DispatchStorage, self._database)
            )
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the database after all already submitted work is done."""
        executor, storage = self._executor, self._storage
        self._executor = self._storage = None
        if executor is None:
            return
        if storage is not None:
            # Queued behind any work still running, so that work finishes first.
            await asyncio.wrap_future(executor.submit(storage.close))
        executor.shutdown(wait=False)

    async def _submit(self, function: Callable[[], _T]) -> _T:
        if self._executor is None:
            raise StorageError("the storage is not open")
        return await asyncio.wrap_future(self._executor.submit(function))

    async def run(self, operation: Callable[[DispatchStorage], _T]) -> _T:
        """Run an operation on the storage thread.

        Args:
            operation: Called with the storage; should be one storage method call.

        Returns:
            What the operation returned.

        Raises:
            StorageError: If the storage is not open.
        """
        storage = self._storage
        if storage is None:
            raise StorageError("the storage is not open")
        return await self._submit(functools.partial(operation, storage))

    async def remember(self, nonce: str, expires_at: float, now: float) -> None:
        """Persist an accepted nonce (see `DispatchStorage.remember_nonce`).

        Args:
            nonce: The nonce.
            expires_at: When it may be forgotten, in UNIX seconds.
            now: The current time, in UNIX seconds.
        """
        await self.run(lambda storage: storage.remember_nonce(nonce, expires_at, now))
