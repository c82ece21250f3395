# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The background service that syncs dispatches and sends their events.

Identity and truth:

* A dispatch is identified by its id **and** its `create_time`. The service
  never reuses an id, except after it lost its data (restarted on an empty or
  restored database): then a listed or streamed dispatch with a held id but
  another `create_time` is another dispatch. The held one is reported
  `Deleted` (and stopped if it ran), the new one `Created` (and started if it
  runs).
* A full list is the truth: every listed version replaces the held one,
  whatever its `update_time` (`Updated` when it differs, so a restored older
  backup is adopted), every held dispatch not listed is `Deleted`, and
  deletions remembered from before do not reject anything listed.
* A stream event older than the state held is ignored: a version with an
  older `update_time` than the held one, a version of a deleted dispatch
  (same or older `create_time`), a deletion of an older incarnation of an id.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.types import DispatchId
from frequenz.sdk.actor import BackgroundService
from typing_extensions import override

from ._api import DispatchApi
from ._cache import CachedState
from ._cache._link import CacheLink, check_cache_options
from ._clock import Clock, wall_clock
from ._delivery import Subscribers, UnboundedReceiver
from ._dispatch import Dispatch
from ._event import Created, Deleted, DispatchEvent, Updated
from ._lifecycle import new_lifecycle_receiver
from ._merge_strategies import MergeStrategy
from ._running_state import RunningStateReceiver
from ._schedule import Change, Schedule
from ._status import DispatcherStatus, LatestStatusReceiver, ScheduleFacts
from ._status import StatusRecorder as _StatusRecorder
from ._sync import DEFAULT_BACKOFF, Backoff, DispatchSync

__all__ = ["DispatchScheduler", "MergeStrategy"]

_logger = logging.getLogger(__name__)

_SPIN = 0.001
"""How close to a due instant the timer stops sleeping and yields instead."""

_STALL_RATIO = 0.001
"""A clock that moves less than this part of a wait counts as standing still."""

_MAX_STALL_WAIT = 24 * 3600.0
"""The longest a timer whose clock stands still waits before looking again (s).

A day: on async-solipsism's loop, a wait this long with nothing else to do raises
`SleepForeverError`, so a test whose clock never moves fails instead of hanging.
"""


class DispatchScheduler(BackgroundService):
    """Keeps the dispatches of a microgrid in sync and sends their events.

    It lists every dispatch, follows the update stream (re-syncing after every
    reconnect), and keeps one timer for the whole schedule. Lifecycle events and
    running-state events go to per-type receivers that never drop a message.
    """

    def __init__(
        self,
        microgrid_id: MicrogridId | int,
        client: DispatchApi,
        *,
        name: str | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Clock = wall_clock,
        cache_file: str | os.PathLike[str] | None = None,
        require_service: bool = False,
        cache_max_age: timedelta | None = None,
    ) -> None:
        """Initialize the scheduler.

        Args:
            microgrid_id: The microgrid whose dispatches to handle.
            client: The dispatch API client (a frequenz-client-dispatch
                `DispatchApiClient`, or the `FakeClient` it ships for tests).
            name: A name for logs.
            backoff: Delays between attempts to reach the service.
            clock: Where "now" is read, by default the system's UTC wall clock;
                tests pass `frequenz.dispatch.testing.FakeClock.now`.
            cache_file: A file to keep the dispatches in, so that the schedule
                runs from it at start-up while the service is unreachable. None
                (the default) keeps no cache.
            require_service: Wait for the first sync with the service even when
                a cache was loaded.
            cache_max_age: Do not start from a cache whose last full sync is
                older than this; None accepts any age.

        Raises:
            TypeError: If `microgrid_id` is not an int or `MicrogridId`, or a
                cache argument has the wrong type.
            ValueError: If `cache_max_age` is not positive.
        """
        super().__init__(name=name)
        if isinstance(microgrid_id, bool) or not isinstance(
            microgrid_id, int | MicrogridId
        ):
            raise TypeError(
                f"microgrid_id must be an int or MicrogridId, got {microgrid_id!r}"
            )
        self._microgrid_id = MicrogridId(int(microgrid_id))
        self._client = client
        self._clock = clock
        self._backoff = backoff
        self._lifecycle = Subscribers[str | None, UnboundedReceiver[DispatchEvent]]()
        self._running_state = Subscribers[str | None, RunningStateReceiver]()
        # status: the bookkeeping behind `status`, fed by the sync and the timer.
        self._status = _StatusRecorder(
            int(self._microgrid_id), clock=clock, facts=self._status_facts
        )
        self._schedule = Schedule(
            self._send_running_state, on_missed=self._status.on_missed
        )
        self._sync = DispatchSync(
            self._microgrid_id, client, self, backoff=backoff, status=self._status
        )
        self._initialized = asyncio.Event()
        self._rearm = asyncio.Event()
        # Offline cache (issue 12): None without `cache_file`.
        cache_path = check_cache_options(cache_file, require_service, cache_max_age)
        self._require_service = require_service
        self._cache = (
            None
            if cache_path is None
            else CacheLink(
                cache_path, self._microgrid_id, max_age=cache_max_age, clock=clock
            )
        )

    @property
    def microgrid_id(self) -> MicrogridId:
        """The microgrid whose dispatches are handled."""
        return self._microgrid_id

    @property
    def resyncs(self) -> int:
        """How many full lists from the service were reconciled so far."""
        return self._sync.resyncs

    @property
    def status(self) -> DispatcherStatus:
        """The scheduler's health now, as an immutable snapshot.

        See `Dispatcher.status`.
        """
        return self._status.snapshot()

    def new_status_receiver(self) -> Receiver[DispatcherStatus]:
        """Return a receiver of status changes that keeps only the latest one.

        See `Dispatcher.new_status_receiver`.

        Returns:
            A receiver that first gets the current status.
        """
        receiver: LatestStatusReceiver = self._status.new_receiver()
        return receiver

    @override
    def start(self) -> None:
        """Start syncing and scheduling; does nothing if already running."""
        if self.is_running:
            return
        self._tasks.add(asyncio.create_task(self._supervise("sync", self._run_sync)))
        self._tasks.add(asyncio.create_task(self._supervise("timer", self._run_timer)))

    @override
    async def stop(self, msg: str | None = None) -> None:
        """Stop the service and close every receiver it handed out.

        Args:
            msg: The message to be passed to the tasks being cancelled.
        """
        try:
            await super().stop(msg)
        finally:
            self._lifecycle.close_all()
            self._running_state.close_all()
            self._status.on_disconnected(None)  # status: stopped, not an error
            self._status.close()
            if self._cache is not None:
                await self._cache.close()  # writes what is pending first

    async def wait_for_initialization(self, timeout: timedelta | None = None) -> None:
        """Wait until the first full sync with the service is done.

        With a `cache_file` holding a usable cache (and `require_service` not
        set), this returns as soon as the cache is loaded into the schedule.

        While the service is unreachable this keeps waiting (the failures are
        logged and retried with back-off) unless a timeout is given.

        Args:
            timeout: Give up after this long; None waits as long as it takes.

        Raises:
            RuntimeError: If the service is not running (never started, or
                stopped) before the first sync.
            TimeoutError: If the timeout expired first.
        """
        if self._initialized.is_set():
            return
        if not self.is_running:
            raise RuntimeError(f"{self} is not running: call start() first")
        initialized = asyncio.ensure_future(self._initialized.wait())
        stopped = asyncio.ensure_future(asyncio.wait(set(self._tasks)))
        try:
            done, _ = await asyncio.wait(
                {initialized, stopped},
                timeout=None if timeout is None else timeout.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            initialized.cancel()
            stopped.cancel()
        if initialized in done:
            return
        if stopped in done:
            raise RuntimeError(f"{self} stopped before the first sync completed")
        raise TimeoutError(
            f"No full sync with {self._client.server_url} within {timeout}"
        )

    def new_lifecycle_events_receiver(
        self, dispatch_type: str
    ) -> Receiver[DispatchEvent]:
        """Return a receiver of created, updated and deleted events of a type.

        Args:
            dispatch_type: The type of the dispatches to receive events of.

        Returns:
            A receiver that gets every event from now on and never drops one.
        """
        _check_type(dispatch_type)
        receiver = new_lifecycle_receiver(f"lifecycle-events:{dispatch_type}")
        self._lifecycle.add(dispatch_type, receiver)
        return receiver

    def new_running_state_event_receiver(
        self,
        dispatch_type: str,
        *,
        merge_strategy: MergeStrategy | None = None,
    ) -> RunningStateReceiver:
        """Return a receiver of the dispatches of a type whose running state changed.

        The receiver first gets every dispatch of the type that runs now. It can be
        used directly or awaited (both return the receiver).

        Args:
            dispatch_type: The type of the dispatches to receive.
            merge_strategy: How overlapping dispatches map to actors; None sends
                every dispatch's events.

        Returns:
            The receiver.

        Raises:
            TypeError: If `merge_strategy` is not a `MergeStrategy` or None.
        """
        _check_type(dispatch_type)
        if merge_strategy is not None and not isinstance(merge_strategy, MergeStrategy):
            raise TypeError(
                "merge_strategy must be a MergeStrategy instance or None, got "
                f"{merge_strategy!r}"
            )
        receiver = RunningStateReceiver(
            name=f"running-state:{dispatch_type}", merge_strategy=merge_strategy
        )
        for running in self._schedule.running(dispatch_type):
            receiver.deliver(running)
        self._running_state.add(dispatch_type, receiver)
        return receiver

    # Only for the deprecated API, which delivered every type to one receiver.

    def _new_lifecycle_events_receiver_for_all_types(
        self,
    ) -> UnboundedReceiver[DispatchEvent]:
        # The deprecated forwarder reads it at once and promised every event.
        receiver = UnboundedReceiver[DispatchEvent](name="lifecycle-events:*")
        self._lifecycle.add(None, receiver)
        return receiver

    def _new_running_state_event_receiver_for_all_types(self) -> RunningStateReceiver:
        receiver = RunningStateReceiver(name="running-state:*", merge_strategy=None)
        for dispatch in self._schedule.running(None):
            receiver.deliver(dispatch)
        self._running_state.add(None, receiver)
        return receiver

    # SyncTarget

    def reconcile(
        self,
        dispatches: Sequence[Dispatch],
        unreadable: AbstractSet[DispatchId] = frozenset(),
        complete: bool = True,
    ) -> None:
        """Make the held dispatches equal to a full list from the service.

        Args:
            dispatches: Every dispatch of the microgrid that could be read.
            unreadable: Ids of listed dispatches that could not be read; the
                version held of them (if any) is kept but stopped (fail safe),
                as the stream would.
            complete: False when the list stopped early: held dispatches not in
                it are kept rather than deleted.
        """
        now = self._advance()
        # Ints rather than ids: an id's hash and equality run in Python.
        listed = {int(dispatch.id) for dispatch in dispatches}
        listed.update(int(dispatch_id) for dispatch_id in unreadable)
        self._schedule.forget_deletions()
        for dispatch_id in unreadable:
            self._suspend(dispatch_id, None)
        # Upserts first: at one instant, a dispatch that starts is seen before one
        # that stops, like the timer does it.
        for dispatch in dispatches:
            self._upsert(dispatch, now, authoritative=True)
        for dispatch_id in self._schedule.ids() if complete else ():
            if int(dispatch_id) not in listed:
                self._remove(dispatch_id, None)
        self._rearm.set()
        self._status.changed()  # status: the dispatches held may have changed
        if not self._initialized.is_set():
            _logger.info(
                "Initial sync of microgrid %s: %d dispatches",
                int(self._microgrid_id),
                len(self._schedule),
            )
            self._initialized.set()
        if self._cache is not None:
            self._cache.synced(self._schedule.dispatches())

    def apply(self, event: Event, dispatch: Dispatch) -> None:
        """Apply one event from the update stream.

        Args:
            event: What happened.
            dispatch: The dispatch it happened to.
        """
        now = self._advance()
        if event is Event.DELETED:
            held = self._schedule.get(dispatch.id)
            if held is not None and dispatch.create_time < held.create_time:
                return  # the deletion of an older incarnation of this id
            self._remove(dispatch.id, dispatch)
        elif event in (Event.CREATED, Event.UPDATED):
            self._upsert(dispatch, now)
        else:
            _logger.warning("Ignoring %s event for dispatch %s", event, dispatch.id)
        self._rearm.set()
        self._status.changed()  # status: the dispatches held may have changed
        if self._cache is not None:
            self._cache.changed(dispatch.id, self._schedule.get(dispatch.id))

    # Offline cache (issue 12)

    @property
    def cache_age(self) -> timedelta | None:
        """The age of the cache the schedule started from, None if it did not."""
        loaded = None if self._cache is None else self._cache.loaded
        return None if loaded is None else loaded.age

    async def _run_sync(self) -> None:
        if self._cache is not None and (state := await self._cache.load()):
            self._resume(state)
        await self._sync.run()

    def _resume(self, state: CachedState) -> None:
        # Like a reconcile of the cached list, except that it writes nothing back
        # and (with `require_service`) leaves the wait for the service alone. The
        # runs that closed while no process handled them are missed, as after a
        # clock jump; a reconcile later counts nothing again (it is no catch-up).
        now = self._advance()
        for dispatch in state.dispatches:
            self._upsert(dispatch, now, handled_until=state.handled_until)
        self._schedule.log_missed(
            now,
            "the process was not running: the cached schedule was handled up to"
            f" {state.handled_until.isoformat()}",
        )
        self._rearm.set()
        self._status.on_cache_loaded(state.synced_at)  # status: the state is cached
        if not self._require_service:
            self._initialized.set()

    def apply_unreadable(
        self, event: Event, dispatch_id: DispatchId, update_time: datetime | None
    ) -> None:
        """Apply a stream event whose dispatch cannot be read (already logged).

        A delete removes the id. A new version of a held dispatch stops it until a
        readable version arrives: the library never keeps acting on a version the
        service replaced.

        Args:
            event: What happened.
            dispatch_id: The dispatch's id.
            update_time: The unreadable version's update time, if readable.
        """
        self._advance()
        if event is Event.DELETED:
            self._remove(dispatch_id, None)
        else:
            self._suspend(dispatch_id, update_time)
        self._rearm.set()

    # Internals

    def _suspend(self, dispatch_id: DispatchId, update_time: datetime | None) -> None:
        if self._schedule.suspend(dispatch_id, update_time):
            _logger.error(
                "Stopping dispatch %s: its new version cannot be read (see the "
                "error above); it stays stopped until a readable version arrives",
                int(dispatch_id),
            )

    def _advance(self) -> datetime:
        now = self._clock()
        with self._status.due_events():  # status: these events were scheduled
            self._schedule.advance(now)
        if self._cache is not None:
            self._cache.handled(now)  # a restart counts missed runs from here
        return now

    def _upsert(
        self,
        dispatch: Dispatch,
        now: datetime,
        *,
        authoritative: bool = False,
        handled_until: datetime | None = None,
    ) -> None:
        held = self._schedule.get(dispatch.id)
        if held is not None and held.create_time != dispatch.create_time:
            if not authoritative and dispatch.create_time < held.create_time:
                return  # a late event of an older incarnation of this id
            # The id was reused after the service lost its data: another dispatch.
            self._remove(dispatch.id, None)
        change = self._schedule.upsert(
            dispatch, now, authoritative=authoritative, handled_until=handled_until
        )
        if change is Change.CREATED:
            self._send_lifecycle(Created(dispatch))
        elif change is Change.UPDATED:
            self._send_lifecycle(Updated(dispatch))

    def _remove(self, dispatch_id: DispatchId, version: Dispatch | None) -> None:
        deleted = self._schedule.remove(dispatch_id, version)
        if deleted is not None:
            self._send_lifecycle(Deleted(deleted))

    def _send_lifecycle(self, event: DispatchEvent) -> None:
        for key in (event.dispatch.type, None):
            for receiver in self._lifecycle.of(key):
                receiver.enqueue(event)

    def _send_running_state(self, dispatch: Dispatch) -> None:
        for key in (dispatch.type, None):
            for receiver in self._running_state.of(key):
                receiver.deliver(dispatch)
        self._status.on_running_state(dispatch)  # status: running counts, lateness

    def _status_facts(self) -> ScheduleFacts:
        schedule = self._schedule
        return ScheduleFacts(
            len(schedule), schedule.running_counts(), schedule.next_due()
        )

    async def _run_timer(self) -> None:
        # The one timer of the whole schedule. It sleeps until the earliest change
        # (or until the schedule changes), then sends everything due. Waking early
        # is harmless: nothing is due yet, so it re-arms.
        stalled = 0.0  # the last wait, if the clock did not keep up with it
        while True:
            self._advance()
            due = self._schedule.next_due()
            self._rearm.clear()
            if due is None:
                await self._rearm.wait()
                continue
            # Measured after sending: the time spent sending must not push the
            # next wake-up later.
            before = self._clock()
            delay = (due - before).total_seconds()
            if delay <= 0:
                continue
            if delay <= _SPIN and not stalled:
                # The selector rounds timeouts up to whole milliseconds: sleeping
                # the last fraction would wake up to 1 ms late. Yield instead, as
                # long as yielding lets the clock move (one that moves only while
                # the loop sleeps would never get there by yielding).
                await asyncio.sleep(0)
                if self._clock() > before:
                    continue
            wait = delay - _SPIN if delay > _SPIN else delay
            if stalled:
                # The clock fell behind the last wait (it is frozen, or slower
                # than the loop, as a test's clocks can be): waking up on the
                # same schedule would spin. Wait longer each time instead.
                wait = max(wait, min(stalled * 2, _MAX_STALL_WAIT))
            try:
                async with asyncio.timeout(wait):
                    await self._rearm.wait()
                stalled = 0.0
            except TimeoutError:
                # Stalled: the clock hardly moved while the loop waited. A clock
                # set back (NTP) moves backwards instead, and is not stalled: the
                # next wait is simply longer.
                moved = (self._clock() - before).total_seconds()
                stalled = wait if 0 <= moved < wait * _STALL_RATIO else 0.0

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        # A crashed internal task is reported and restarted, never silently gone;
        # the restarts back off like reconnects (a sync that crashes on every list
        # must not re-list every second, nor a fleet in lock-step).
        loop = asyncio.get_running_loop()
        crashes = 0
        while True:
            started = loop.time()
            try:
                await run()
                _logger.error("%s: the %s task ended; restarting it", self, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                _logger.exception("%s: the %s task failed; restarting it", self, name)
            if loop.time() - started > self._backoff.maximum.total_seconds():
                crashes = 0  # it ran for long: a new failure, not a crash loop
            crashes += 1
            await asyncio.sleep(self._backoff.delay(crashes))


def _check_type(dispatch_type: object) -> None:
    if not isinstance(dispatch_type, str):
        raise TypeError(f"dispatch_type must be a str, got {dispatch_type!r}")
