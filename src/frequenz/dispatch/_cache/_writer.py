# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The cache's SQLite work on one dedicated thread, in order and batched.

Writing a changed full sync of 100,000 dispatches takes over a second (encoding
every row, then SQLite), which on the event loop would delay every start and
stop by as much. The event loop therefore only records what to write: a full
sync as a list of references to the (immutable) dispatches held, stream changes
per id, and the instant the schedule was last evaluated at. One job at a time
runs on the writer's one thread; what is recorded while a job runs is written
together by the next one, so a burst costs few transactions however it arrives,
and a full sync recorded meanwhile supersedes the changes before it.

Each job is one or two SQLite transactions (the full sync, then the changes
recorded after it), so a kill -9 at any moment leaves the state before or after
a transaction, as with writes on the loop. `close()` waits for the job running
and writes what is pending before the file is closed.

On async-solipsism's fake-time loop (the tests'), `run_in_executor` runs the job
at once and waits for it, so the file is written before the fake time moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from .._clock import Clock
from .._dispatch import Dispatch
from ._store import DispatchCache

_logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class CacheWriter:
    """Writes one cache file on a dedicated thread; every method is for the loop.

    `store` is set and used on the writer's thread only: open the store in a
    job (`run`), so that the connection never changes threads.
    """

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        flush_interval: timedelta = timedelta(milliseconds=200),
        max_pending: int = 2000,
    ) -> None:
        """Start nothing yet: the thread is started by the first job.

        Args:
            name: The thread's name prefix.
            clock: Where "now" is read (on the loop, never on the thread).
            flush_interval: The longest a recorded change waits to be written.
            max_pending: How many waiting changes start a write at once.

        Raises:
            ValueError: If `flush_interval` is negative or `max_pending` < 1.
        """
        if flush_interval < timedelta(0):
            raise ValueError(f"flush_interval must not be negative: {flush_interval}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.store: DispatchCache | None = None
        """The open store; used on the writer's thread only."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._clock = clock
        self._interval = flush_interval.total_seconds()
        self._max_pending = max_pending
        self._full: tuple[list[Dispatch], datetime] | None = None
        self._changes: dict[int, Dispatch | None] = {}
        self._handled: datetime | None = None
        self._handled_sent: datetime | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, job: Callable[[], _T]) -> _T:
        """Run a job on the writer's thread, after every job before it.

        Args:
            job: What to run.

        Returns:
            What the job returned.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, job)

    def full_sync(self, dispatches: list[Dispatch], synced_at: datetime) -> None:
        """Record a full sync: the file will hold exactly these dispatches.

        Supersedes the changes recorded before it and not written yet.

        Args:
            dispatches: Every dispatch held after the sync (the list is kept).
            synced_at: When the sync happened.
        """
        if self._closed:
            return
        self._full = (dispatches, synced_at)
        self._changes = {}
        self._kick(urgent=True)

    def change(self, key: int, dispatch: Dispatch | None) -> None:
        """Record the version held of one dispatch after a stream event.

        Args:
            key: The dispatch id.
            dispatch: The version now held, None if it is not held (deleted).
        """
        if self._closed:
            return
        self._changes[key] = dispatch
        self._kick(urgent=len(self._changes) >= self._max_pending)

    def handled(self, now: datetime) -> None:
        """Record that the schedule was evaluated up to `now` (written batched).

        Args:
            now: The instant.
        """
        if self._closed or now == self._handled:
            return
        self._handled = now
        self._kick(urgent=False)

    async def flushed(self) -> None:
        """Wait until everything recorded so far is written (or failed)."""
        self._cancel_timer()
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        # What waits for the interval, or what a failed job left: one more
        # drain, not a retry loop.
        if self._has_work():
            self._task = asyncio.create_task(self._drain(), name="cache-writer")
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Write what is pending, close the store on its thread, end the thread."""
        if self._closed:
            return
        try:
            await self.flushed()
        finally:
            self._closed = True
            self._cancel_timer()
            try:
                await self.run(self._close_store)
            finally:
                self._executor.shutdown(wait=False)

    # Internals

    def _has_work(self) -> bool:
        return (
            self._full is not None
            or bool(self._changes)
            or self._handled != self._handled_sent
        )

    def _kick(self, *, urgent: bool) -> None:
        if self._task is not None and not self._task.done():
            return  # the running drain writes it when its job is done
        if urgent:
            self._cancel_timer()
            self._task = asyncio.create_task(self._drain(), name="cache-writer")
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._interval, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="cache-writer")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _drain(self) -> None:
        # Jobs one after the other, each taking everything recorded so far.
        while self._has_work():
            full, self._full = self._full, None
            changes, self._changes = self._changes, {}
            handled = self._handled_sent = self._handled
            job = functools.partial(self._write, full, changes, handled, self._clock())
            try:
                committed = await self.run(job)
            except Exception:
                _logger.exception("Cannot write the dispatch cache")
                committed = False
            if not committed:
                # Kept for the next write, which waits an interval: a file that
                # cannot be written is not retried in a busy loop.
                for key, dispatch in changes.items():
                    self._changes.setdefault(key, dispatch)
                if not self._closed:
                    loop = asyncio.get_running_loop()
                    self._cancel_timer()
                    self._timer = loop.call_later(self._interval, self._due)
                return

    def _write(
        self,
        full: tuple[list[Dispatch], datetime] | None,
        changes: dict[int, Dispatch | None],
        handled: datetime | None,
        at: datetime,
    ) -> bool:
        # On the writer's thread. A failed write is logged by the store; a full
        # sync that failed is not retried (the next one rewrites everything).
        store = self.store
        if store is None:
            return True
        if full is not None:
            dispatches, synced_at = full
            store.replace_all(dispatches, synced_at, handled_until=handled, at=at)
            if not changes:
                return True
        return store.write_changes(changes, handled_until=handled, at=at)

    def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()
