# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The dispatcher's health: an immutable status snapshot and its bookkeeping.

`StatusRecorder` is told what happens (connected, disconnected, a full sync, a
missed run, where the state came from) by the sync and the scheduler through small
calls, and builds `DispatcherStatus` snapshots from that and from what the
schedule holds. Subscribers get the latest snapshot only: publishing is coalesced
to once per event-loop iteration, and a receiver keeps one pending snapshot, so a
slow health reporter never makes anything pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from ._clock import Clock, wall_clock
from ._delivery import UnboundedReceiver
from ._dispatch import Dispatch

__all__ = [
    "DispatcherStatus",
    "LatestStatusReceiver",
    "ScheduleFacts",
    "StateSource",
    "StatusRecorder",
]

_EMPTY: Mapping[str, int] = MappingProxyType({})


class StateSource(enum.Enum):
    """Where the dispatches a dispatcher holds came from."""

    NONE = "none"
    """Nothing yet: no full sync with the service, nothing loaded from a cache."""

    SERVICE = "service"
    """A full list from the Dispatch API service (then its update stream)."""

    CACHE = "cache"
    """The offline cache, loaded while the service was not reachable yet."""


@dataclass(frozen=True, kw_only=True)
class DispatcherStatus:
    """A snapshot of a dispatcher's health; immutable, safe to keep and compare.

    Read it from `Dispatcher.status` or receive every change from
    `Dispatcher.new_status_receiver()`. Instants are timezone-aware UTC, read from
    the dispatcher's clock.
    """

    microgrid_id: int
    """The microgrid whose dispatches are handled."""

    connected: bool
    """Whether the update stream is up after a full sync, right now."""

    source: StateSource
    """Where the dispatches held came from."""

    last_full_sync: datetime | None = None
    """When the last full list from the service was reconciled."""

    last_sync_duration: timedelta | None = None
    """How long that list and its reconciliation took."""

    disconnected_since: datetime | None = None
    """When the connection was lost (or the first attempt failed); None while
    connected, and before the first attempt."""

    last_error: str | None = None
    """What made the last attempt to connect or sync fail, or the stream end."""

    last_error_at: datetime | None = None
    """When that was."""

    resyncs: int = 0
    """Full lists reconciled after the first one (each reconnect re-lists)."""

    reconnects: int = 0
    """Times the connection was re-established after being lost."""

    failed_attempts: int = 0
    """Attempts to connect or sync that failed, and streams that broke, so far."""

    dispatches: int = 0
    """Dispatches held."""

    running: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Dispatches running now, per type (types with none are left out)."""

    missed_runs: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Runs missed so far, per type: windows that had closed when the process got
    to them (it was suspended, or the clock jumped)."""

    next_change: datetime | None = None
    """The next instant at which a dispatch starts or stops, if any."""

    cache_synced_at: datetime | None = None
    """The instant of the full sync with the service whose dispatches the offline
    cache held when this dispatcher started from it; None if it did not start
    from a cache. It stays after the service answers: `source` tells whether
    the state still comes from the cache. See `cache_age`."""

    def cache_age(self, now: datetime) -> timedelta | None:
        """How old the cached state the dispatcher started from is at `now`.

        A method rather than a field, like `is_healthy`: the age grows while
        the snapshot stays the same.

        Args:
            now: The current time (timezone-aware).

        Returns:
            `now - cache_synced_at`, or None if the dispatcher did not start
                from a cache.
        """
        if self.cache_synced_at is None:
            return None
        return now - self.cache_synced_at

    @property
    def ready(self) -> bool:
        """Whether the dispatcher holds a state to act on (from the service or cache).

        The answer for a readiness probe.
        """
        return self.source is not StateSource.NONE

    def is_healthy(self, now: datetime, max_offline: timedelta) -> bool:
        """Whether the dispatcher is ready and not cut off for too long.

        The answer for a liveness probe: a short outage is normal (the dispatcher
        keeps acting on the state it holds and re-syncs when the service comes
        back), a long one means the dispatches acted on may be stale.

        Args:
            now: The current time (timezone-aware).
            max_offline: The longest outage still considered healthy.

        Returns:
            True if ready and connected, or disconnected for at most
                `max_offline`.
        """
        if not self.ready:
            return False
        if self.connected or self.disconnected_since is None:
            return self.connected
        return now - self.disconnected_since <= max_offline


class ScheduleFacts(NamedTuple):
    """What a status snapshot reads from the schedule."""

    dispatches: int
    """Dispatches held."""
    running: Mapping[str, int]
    """Dispatches running now, per type."""
    next_change: datetime | None
    """The next scheduled change."""
    missed_runs: Mapping[str, int] | None = None
    """Missed runs per type, if the schedule counts them (else the recorder does)."""


def _no_facts() -> ScheduleFacts:
    return ScheduleFacts(0, _EMPTY, None)


class LatestStatusReceiver(UnboundedReceiver[DispatcherStatus]):
    """A receiver that keeps only the latest status not yet consumed.

    A consumer that reads rarely gets the newest snapshot, never a backlog: every
    snapshot supersedes the pending one (the library's never-dropping receiver,
    with one coalescing key for all snapshots).
    """

    def __init__(self, initial: DispatcherStatus | None) -> None:
        """Initialize the receiver.

        Args:
            initial: The snapshot to deliver first, if any.
        """
        super().__init__(name="status", coalesce_key=_one_key, supersedes=_always_newer)
        if initial is not None:
            self.enqueue(initial)

    def offer(self, status: DispatcherStatus) -> None:
        """Replace the pending snapshot with a newer one (the sending side).

        Args:
            status: The new snapshot.
        """
        self.enqueue(status)


def _one_key(_: DispatcherStatus) -> int:
    return 0


def _always_newer(_newer: DispatcherStatus, _pending: DispatcherStatus) -> bool:
    return True


class StatusRecorder:
    """Keeps the counters and instants of a dispatcher's status; publishes changes.

    Every `on_*` method is a small synchronous call for the sync and the
    scheduler; none of them raises or blocks. Observers (the metrics) get the
    samples that a snapshot cannot hold: each sync's duration and each due
    event's lateness.
    """

    def __init__(
        self,
        microgrid_id: int = 0,
        *,
        clock: Clock = wall_clock,
        facts: Callable[[], ScheduleFacts] = _no_facts,
    ) -> None:
        """Initialize the recorder.

        Args:
            microgrid_id: The microgrid, for the snapshots.
            clock: Where instants are read.
            facts: Reads what the schedule holds, for each snapshot.
        """
        self.clock = clock
        self._facts = facts
        self._base = DispatcherStatus(
            microgrid_id=microgrid_id, connected=False, source=StateSource.NONE
        )
        self._was_connected = False
        self._missed: dict[str, int] = {}
        self._receivers: weakref.WeakSet[LatestStatusReceiver] = weakref.WeakSet()
        self._pending_publish = False
        self._latest: DispatcherStatus | None = None
        self._in_due = False
        self._until: dict[int, datetime] = {}
        self.lateness_observers: list[Callable[[str, float], None]] = []
        """Called with (type, seconds) for every event sent for a due instant."""
        self.sync_observers: list[Callable[[float], None]] = []
        """Called with the seconds each full sync took."""

    # What happened

    def on_connected(self) -> None:
        """Record that the update stream is up (after a full sync)."""
        if self._was_connected and not self._base.connected:
            self._update(reconnects=self._base.reconnects + 1)
        self._was_connected = True
        self._update(connected=True, disconnected_since=None)

    def on_disconnected(
        self, error: BaseException | str | None, at: datetime | None = None
    ) -> None:
        """Record a failed attempt, a broken stream or a closed one.

        Args:
            error: What failed; None for a stream the server closed cleanly.
            at: When; now by default.
        """
        at = self.clock() if at is None else at
        changes: dict[str, object] = {"connected": False}
        if self._base.disconnected_since is None:
            changes["disconnected_since"] = at
        if error is not None:
            changes["last_error"] = _describe(error)
            changes["last_error_at"] = at
            changes["failed_attempts"] = self._base.failed_attempts + 1
        self._update(**changes)

    def on_listing(self) -> datetime:
        """Record that a full list starts.

        Returns:
            The instant, to hand to `on_full_sync`.
        """
        return self.clock()

    def on_full_sync(
        self, started: datetime | None = None, at: datetime | None = None
    ) -> None:
        """Record a full list reconciled; the state now comes from the service.

        Args:
            started: When the list started (see `on_listing`), for its duration.
            at: When it was reconciled; now by default.
        """
        at = self.clock() if at is None else at
        duration = None if started is None else max(at - started, timedelta(0))
        resyncs = self._base.resyncs + (self._base.last_full_sync is not None)
        self._update(
            last_full_sync=at,
            last_sync_duration=duration,
            resyncs=resyncs,
            source=StateSource.SERVICE,
        )
        self.on_connected()
        if duration is not None:
            for observe in self.sync_observers:
                observe(duration.total_seconds())

    def set_source(self, source: StateSource) -> None:
        """Record where the state held comes from (the cache sets `CACHE`).

        Args:
            source: The source.
        """
        self._update(source=StateSource(source))

    def on_cache_loaded(self, synced_at: datetime) -> None:
        """Record that the state comes from the offline cache, synced then.

        Args:
            synced_at: The instant of the full sync the cache holds.
        """
        self._update(source=StateSource.CACHE, cache_synced_at=synced_at)

    def on_missed(self, dispatch_type: str, count: int) -> None:
        """Count runs missed by dispatches of a type.

        Args:
            dispatch_type: The type.
            count: How many runs were missed.
        """
        if count > 0:
            self._missed[dispatch_type] = self._missed.get(dispatch_type, 0) + count
            self.changed()

    @contextlib.contextmanager
    def due_events(self) -> Iterator[None]:
        """Mark the running-state events sent inside as sent for a due instant.

        Yields:
            Nothing; the block's events count for the lateness histogram.
        """
        self._in_due = True
        try:
            yield
        finally:
            self._in_due = False

    def on_running_state(self, dispatch: Dispatch) -> None:
        """Record a running-state event (its lateness, when it was due).

        Args:
            dispatch: The event.
        """
        self.changed()
        if not self.lateness_observers:
            return
        started = dispatch.started
        until = dispatch.until
        scheduled: datetime | None
        now = self.clock()
        if started:
            scheduled = _window_start(dispatch, now)
            if until is not None:
                self._until[int(dispatch.id)] = until
        else:
            scheduled = self._until.pop(int(dispatch.id), None)
        if not self._in_due or scheduled is None:
            return
        lateness = max((now - scheduled).total_seconds(), 0.0)
        for observe in self.lateness_observers:
            observe(dispatch.type, lateness)

    def changed(self) -> None:
        """Note that the status may have changed: publish once this loop turn."""
        if self._pending_publish:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # nobody can be listening without a loop
        self._pending_publish = True
        loop.call_soon(self._publish)

    # Reading

    def snapshot(self) -> DispatcherStatus:
        """Return the status as of now.

        Returns:
            A new immutable snapshot.
        """
        facts = self._facts()
        missed = facts.missed_runs
        if missed is None:
            missed = self._missed
        return replace(
            self._base,
            dispatches=facts.dispatches,
            running=MappingProxyType(dict(facts.running)),
            missed_runs=MappingProxyType(dict(missed)),
            next_change=facts.next_change,
        )

    @property
    def latest(self) -> DispatcherStatus:
        """The last snapshot published; safe to read from another thread."""
        latest = self._latest
        # Before the first publication: no schedule facts, which only the loop's
        # thread may read.
        return self._base if latest is None else latest

    def new_receiver(self) -> LatestStatusReceiver:
        """Return a receiver of status changes, starting with the current status.

        Returns:
            The receiver.
        """
        current = self.snapshot()
        receiver = LatestStatusReceiver(current)
        self._receivers.add(receiver)
        return receiver

    def close(self) -> None:
        """Publish the final status and close every receiver."""
        self._publish()
        for receiver in list(self._receivers):
            receiver.close()
        self._receivers.clear()

    # Internals

    def _update(self, **changes: object) -> None:
        self._base = replace(self._base, **changes)  # type: ignore[arg-type]
        self.changed()

    def _publish(self) -> None:
        self._pending_publish = False
        status = self.snapshot()
        if status == self._latest:
            return
        self._latest = status
        for receiver in list(self._receivers):
            receiver.offer(status)


def _window_start(dispatch: Dispatch, now: datetime) -> datetime | None:
    until = dispatch.until
    if until is not None and dispatch.duration is not None:
        return until - dispatch.duration
    window = dispatch.window_at(now)
    return None if window is None else window.start


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        try:
            name = getattr(code(), "name", code())
            return f"{name}: {details()}"
        except Exception:
            pass
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
