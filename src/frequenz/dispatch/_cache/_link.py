# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Ties a cache file to the scheduler: what to load at start, what to write.

Nothing the cache does may affect the schedule: every failure is logged and the
scheduler goes on as without a cache. Every SQLite call (opening, loading,
writing, closing) runs on the link's `CacheWriter` thread, so the connection
never changes threads and the event loop never waits for the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.types import DispatchId

from .._clock import Clock, wall_clock
from .._dispatch import Dispatch
from ._store import CachedState, DispatchCache
from ._writer import CacheWriter

_logger = logging.getLogger(__name__)


def check_cache_options(
    cache_file: object, require_service: object, cache_max_age: object
) -> Path | None:
    """Validate the cache arguments of the scheduler and the dispatcher.

    Args:
        cache_file: The cache file path, or None for no cache.
        require_service: Whether to wait for the service despite a cache.
        cache_max_age: The oldest cache to use, or None for any age.

    Returns:
        The cache file as a path, or None.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If `cache_max_age` is not positive.
    """
    if not isinstance(require_service, bool):
        raise TypeError(f"require_service must be a bool, got {require_service!r}")
    if cache_max_age is not None:
        if not isinstance(cache_max_age, timedelta):
            raise TypeError(
                f"cache_max_age must be a timedelta or None, got {cache_max_age!r}"
            )
        if cache_max_age <= timedelta(0):
            raise ValueError(f"cache_max_age must be positive, got {cache_max_age}")
    if cache_file is None:
        return None
    if not isinstance(cache_file, str | os.PathLike) or not str(cache_file):
        raise TypeError(
            f"cache_file must be a non-empty path (str or PathLike), got {cache_file!r}"
        )
    return Path(cache_file)


class CacheLink:
    """The scheduler's side of the cache: load once, then record what to write."""

    def __init__(
        self,
        path: Path,
        microgrid_id: MicrogridId,
        *,
        max_age: timedelta | None,
        clock: Clock = wall_clock,
        flush_interval: timedelta = timedelta(milliseconds=200),
        max_pending: int = 2000,
    ) -> None:
        """Prepare the link; the file is opened by `load()`.

        Args:
            path: The cache file.
            microgrid_id: The microgrid.
            max_age: Refuse a cache older than this.
            clock: Where "now" is read (the scheduler's clock).
            flush_interval: The longest a stream change waits to be written.
            max_pending: How many waiting changes start a write at once.

        Raises:
            ValueError: If `flush_interval` is negative or `max_pending` < 1.
        """
        self._clock = clock
        self._path = path
        self._microgrid_id = microgrid_id
        self._max_age = max_age
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._writer = self._new_writer()
        self._opened = False
        self._marking = False
        self._serving = False
        self.loaded: CachedState | None = None
        """What was loaded at start-up, if anything."""

    async def load(self) -> CachedState | None:
        """Open the file and read what it holds (once), on the writer's thread.

        Returns:
            The cached state to start from, or None.
        """
        if self._opened:
            return None  # a restarted sync task: the schedule has it already
        self._opened = True
        now = self._clock()
        try:
            self.loaded = await self._writer.run(lambda: self._open_and_load(now))
        except Exception as error:
            _logger.error(
                "Dispatch cache %s unusable, running without it: %s", self._path, error
            )
            self.loaded = None
            return None
        finally:
            # From now on the schedule's instants are about the state the file
            # holds (the one loaded, or the next full sync).
            self._marking = True
        loaded = self.loaded
        if loaded is None:
            _logger.info("No usable dispatch cache in %s", self._path)
            return None
        self._serving = True
        _logger.info(
            "Dispatch cache %s: %d dispatches of microgrid %d, synced at %s"
            " (age %s), handled until %s",
            self._path,
            len(loaded.dispatches),
            int(self._microgrid_id),
            loaded.synced_at.isoformat(),
            loaded.age,
            loaded.handled_until.isoformat(),
        )
        _logger.warning(
            "Microgrid %s: running the schedule from the dispatch cache (%d"
            " dispatches, age %s) until the service is reached",
            int(self._microgrid_id),
            len(loaded.dispatches),
            loaded.age,
        )
        return loaded

    def synced(self, held: list[Dispatch]) -> None:
        """Record the state after a full sync (written at once, off the loop).

        Args:
            held: Every dispatch the schedule holds now; the list is kept, the
                dispatches are immutable.
        """
        if self._serving:
            self._serving = False
            _logger.info(
                "Microgrid %s: the schedule from the cache is now reconciled with"
                " the service",
                int(self._microgrid_id),
            )
        self._writer.full_sync(held, self._clock())

    def changed(self, dispatch_id: DispatchId, held: Dispatch | None) -> None:
        """Record the state of one dispatch after a stream event (batched).

        Args:
            dispatch_id: The dispatch the event was about.
            held: The version now held, or None if it is not held (deleted).
        """
        self._writer.change(int(dispatch_id), held)

    def handled(self, now: datetime) -> None:
        """Record that the schedule was evaluated up to `now` (batched).

        A process that starts from the file counts the runs that closed after
        the last such instant written as missed. Before `load()` finished, the
        schedule does not hold the file's state yet: nothing is recorded.

        Args:
            now: The instant.
        """
        if self._marking:
            self._writer.handled(now)

    async def flushed(self) -> None:
        """Wait until everything recorded so far is written (or failed)."""
        await self._writer.flushed()

    async def close(self) -> None:
        """Write what is pending and close the file; `load()` may open it again."""
        writer, self._writer = self._writer, self._new_writer()
        self._opened = self._marking = self._serving = False
        try:
            await writer.close()
        except Exception:
            _logger.exception("Cannot close the dispatch cache %s", self._path)

    def _new_writer(self) -> CacheWriter:
        return CacheWriter(
            name=f"dispatch-cache-{int(self._microgrid_id)}",
            clock=self._clock,
            flush_interval=self._flush_interval,
            max_pending=self._max_pending,
        )

    def _open_and_load(self, now: datetime) -> CachedState | None:
        # On the writer's thread.
        cache = DispatchCache.open(self._path, self._microgrid_id, clock=self._clock)
        try:
            state = cache.load(self._max_age, now=now)
        except BaseException:
            with contextlib.suppress(Exception):
                cache.close()
            raise
        self._writer.store = cache  # written from now on
        return state
