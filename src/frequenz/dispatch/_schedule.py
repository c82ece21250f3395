# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The schedule: every dispatch's running state on one timeline.

Each dispatch has one entry holding its latest version, the window it was last
reported running in, and the next instant at which that can change. The instants
live in one heap, so adding, removing or rescheduling a dispatch costs O(log n) and
finding what is due costs O(1). Replaced heap items are left in place and skipped
when they surface (lazy deletion); when they outnumber the live ones the heap is
rebuilt, which keeps memory bounded at an amortized O(1) per operation.

Events describe the present: every change is evaluated at the instant the schedule
is told about (`now`), not at the instant it was due. A window that closed before
the schedule got to it is a *missed run* (counted and logged, never sent); one
still open is started late with its true end. A window that closed less than
`ON_TIME_TOLERANCE` after it started, when reached within that tolerance (a
zero-duration switch, the timer's usual sub-millisecond lateness), is on time: its
start and stop are both sent.

Everything here is synchronous: the scheduler service calls it from one task at a
time, so no state is ever seen half-updated.
"""

from __future__ import annotations

import enum
import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from frequenz.client.dispatch.types import DispatchId

from ._dispatch import Dispatch, Window
from ._gc import gc_paused

_logger = logging.getLogger(__name__)

_TICK: Final = timedelta(microseconds=1)

_MAX_TOMBSTONES = 100_000
"""How many deleted ids are remembered to reject late events for them."""

_MIN_HEAP_REBUILD = 1024
"""Below this many stale heap items a rebuild is not worth it."""

ON_TIME_TOLERANCE: Final = timedelta(seconds=1)
"""How late a run may be reached and still count as on time.

A run whose window has already closed when the schedule gets to it is sent (as a
start immediately followed by a stop) if its start lies at most this far in the
past, and counted as missed otherwise. It is far above the timer's normal
lateness (under a millisecond) and a busy loop's hiccups (a garbage collection, a
burst of thousands of events), and far below the shortest period of a rule (a
minute), so a switch reached on time is never missed and a catch-up never replays
more than the one run that was due just now. A wall clock stepped back by no more
than this is treated as standing still rather than as a jump back.
"""


class Change(enum.Enum):
    """What applying a dispatch version did to the schedule."""

    CREATED = enum.auto()
    """The dispatch was not known before."""

    UPDATED = enum.auto()
    """A known dispatch changed."""

    UNCHANGED = enum.auto()
    """The version is identical to the one held."""

    STALE = enum.auto()
    """The version is older than the one held (or than its deletion): ignored."""

    INVALID = enum.auto()
    """The version cannot be interpreted: logged and ignored."""


# Fields whose change matters to a consumer while the dispatch runs.
_RUNNING_FIELDS = ("type", "start_time", "duration", "target", "active", "dry_run")


def _reconfigures(old: Dispatch, new: Dispatch) -> bool:
    return old.payload != new.payload or any(
        getattr(old, name) != getattr(new, name) for name in _RUNNING_FIELDS
    )


CAUGHT_UP: Final = "it was suspended or blocked, or the wall clock jumped"
"""Why runs are missed in a catch-up of the running process (for the log)."""


class _MissedRuns:
    """The log message of one catch-up: a line per dispatch, built when logged."""

    __slots__ = ("_cause", "_missed", "_now")

    def __init__(
        self,
        now: datetime,
        missed: list[tuple[int, str, int, datetime, datetime]],
        cause: str,
    ) -> None:
        self._now = now
        self._missed = missed
        self._cause = cause

    def __str__(self) -> str:
        total = sum(count for _, _, count, _, _ in self._missed)
        lines = [
            f"Missed {total} run(s) of {len(self._missed)} dispatch(es): they ended "
            f"before the process got to them at {self._now.isoformat()} "
            f"({self._cause})"
        ]
        lines.extend(
            f"  dispatch {dispatch_id} (type {dispatch_type!r}): {count} run(s) "
            f"missed, from {first.isoformat()} to {last.isoformat()}"
            for dispatch_id, dispatch_type, count, first, last in self._missed
        )
        return "\n".join(lines)


_HeapItem: TypeAlias = tuple[datetime, int, int]
"""One scheduled instant: `(due, rank, key)`, compared in this order.

`due` is when the dispatch's running state may change; `rank` is 0 for a start
and 1 for a stop (at one instant, starts come first); `key` is the dispatch's
id as an int. An item is live while its entry holds that very item
(`entry.item is item`); any other is stale. A plain tuple: it is the smallest
object that does this (one per dispatch), and ties compare ints in C.
"""


def _key(dispatch_id: DispatchId) -> int:
    # The schedule's maps are keyed by the id's int: hashing and comparing an
    # int costs nothing next to the id's Python `__hash__` and `__eq__`, and it
    # is the very int the id holds, so no memory is added.
    return int(dispatch_id)


@dataclass(slots=True)
class _Entry:
    dispatch: Dispatch
    window: Window | None = None
    """The window of the last running-state event sent, None if stopped."""
    item: _HeapItem | None = None
    """The entry's live heap item (its `due` first), None if nothing is due."""
    seen: datetime | None = None
    """The instant the entry was last evaluated at: runs up to it are handled."""
    fired: datetime | None = None
    """The start of the last closed run sent as a start and a stop (a switch)."""
    suspended: bool = False
    """Whether a newer version could not be read: it is stopped until one can."""


class Schedule:
    """The running state of every dispatch of a microgrid, and when it changes."""

    def __init__(
        self,
        emit: Callable[[Dispatch], None],
        on_missed: Callable[[str, int], None] | None = None,
    ) -> None:
        """Initialize an empty schedule.

        Args:
            emit: Called with every running-state event, in order. The dispatch it
                gets has its running state fixed as of the event.
            on_missed: Called with a dispatch type and a count whenever runs of
                a dispatch of that type are missed (the status counts them).
        """
        self._emit = emit
        self._on_missed = on_missed
        # Keyed by `_key(id)`.
        self._entries: dict[int, _Entry] = {}
        self._heap: list[_HeapItem] = []
        self._stale_items = 0
        # Deleted ids with the `create_time` of the dispatch that had them.
        self._tombstones: OrderedDict[int, datetime] = OrderedDict()
        # The entries running now, per type, in the order they started. Entries
        # rather than the start events sent: a copy of every running dispatch
        # would be held for as long as it runs; the event is rebuilt on demand.
        self._running: dict[str, dict[int, _Entry]] = {}
        self._now: datetime | None = None
        self._missed: dict[str, int] = {}
        self._catch_up: list[tuple[int, str, int, datetime, datetime]] = []

    def __len__(self) -> int:
        """Return the number of dispatches held."""
        return len(self._entries)

    def ids(self) -> list[DispatchId]:
        """Return the ids of the dispatches held.

        Returns:
            The ids.
        """
        return [entry.dispatch.id for entry in self._entries.values()]

    def get(self, dispatch_id: DispatchId) -> Dispatch | None:
        """Return the version held of a dispatch.

        Args:
            dispatch_id: The id.

        Returns:
            The dispatch, or None if it is not held.
        """
        entry = self._entries.get(_key(dispatch_id))
        return None if entry is None else entry.dispatch

    def running(self, dispatch_type: str | None) -> Iterator[Dispatch]:
        """Iterate over the last start events of the dispatches running now.

        Args:
            dispatch_type: Only this type, or every type for None.

        Yields:
            Each running dispatch's last start event, in the order they started.
        """
        if dispatch_type is not None:
            entries = list(self._running.get(dispatch_type, {}).values())
        else:
            entries = [
                e for running in self._running.values() for e in running.values()
            ]
        for entry in entries:
            yield entry.dispatch.with_running_state(entry.window)

    def running_counts(self) -> dict[str, int]:
        """Return how many dispatches are running now, per type.

        Counted from the running maps: unlike `running`, no start event is
        rebuilt, so the status can ask for it on every change.

        Returns:
            A new dict from dispatch type to the number running (types with none
                are absent).
        """
        return {kind: len(entries) for kind, entries in self._running.items()}

    def next_due(self) -> datetime | None:
        """Return when the next running state may change.

        Returns:
            The earliest scheduled instant, or None if nothing is scheduled.
        """
        self._drop_stale_top()
        return self._heap[0][0] if self._heap else None

    def missed_runs_by_type(self) -> dict[str, int]:
        """Return how many runs were missed so far, per dispatch type.

        A run is missed when its window closed before the schedule got to it (the
        process was suspended, the event loop blocked, the wall clock jumped
        forward): it was never sent. Each catch-up also logs one warning per
        dispatch with the count and the span.

        Returns:
            A new dict from dispatch type to the number of missed runs (types
                without any are absent).
        """
        return dict(self._missed)

    def forget_deletions(self) -> None:
        """Forget which ids were deleted.

        Called before reconciling a full list, which is authoritative: a
        dispatch it contains exists, whatever the stream said before.
        """
        self._tombstones.clear()

    def upsert(
        self,
        dispatch: Dispatch,
        now: datetime,
        *,
        authoritative: bool = False,
        handled_until: datetime | None = None,
    ) -> Change:
        """Add a dispatch, or replace the version held.

        Sends the running-state events the change calls for: a start when it runs
        now and did not, a stop when it ran and does not, and a start with the new
        version when it runs and a field a consumer acts on changed.

        A dispatch is identified by its id and `create_time` (see the module
        docstring of `_bg_service`): the caller replaces a held dispatch of
        another identity (`remove` then `upsert`) before calling this.

        Args:
            dispatch: The new version.
            now: The current time; everything due up to it must have been advanced.
            authoritative: The version comes from a full list, which is the
                truth: it replaces the held one whatever its `update_time`, and
                a deletion remembered for the id does not reject it. A stream
                event (False) older than the state held is rejected.
            handled_until: For a dispatch not held yet that a previous process
                held (loaded from the offline cache): the instant that process
                had handled its runs up to. The dispatch is then caught up from
                there like after a clock jump: the runs that closed since are
                missed (counted, and logged by the next `log_missed`), a window
                still open is started late. Ignored for a dispatch held already.

        Returns:
            What the change did.
        """
        key = _key(dispatch.id)
        deleted_created = self._tombstones.get(key)
        if deleted_created is not None:
            if not authoritative and dispatch.create_time <= deleted_created:
                # A version of the deleted dispatch itself that still arrives
                # (queued before a re-sync's list, or late) is stale; a later
                # `create_time` means the id was reused (the service lost its data).
                return Change.STALE
            del self._tombstones[key]
        now = self._observe(now)
        entry = self._entries.get(key)
        if entry is not None:
            if not authoritative and dispatch.update_time < entry.dispatch.update_time:
                return Change.STALE
            if dispatch == entry.dispatch and not entry.suspended:
                return Change.UNCHANGED
        try:
            dispatch.validate()
        except ValueError as error:
            _logger.error("Skipping a dispatch that cannot be scheduled: %s", error)
            if entry is not None:
                # Fail safe: never keep acting on a version the service replaced.
                self._suspend(entry)
            return Change.INVALID

        if entry is None:
            entry = _Entry(dispatch)
            self._entries[key] = entry
            resumed = handled_until is not None and handled_until < now
            if resumed:
                entry.seen = handled_until
            self._evaluate(entry, now, reconfigure=False, catching_up=resumed)
            return Change.CREATED

        old = entry.dispatch
        if entry.window is not None and old.type != dispatch.type:
            # Consumers subscribe per type: the old type's must see it stop.
            self._send(entry, None)
        entry.dispatch = dispatch
        entry.suspended = False
        self._evaluate(
            entry, now, reconfigure=_reconfigures(old, dispatch), catching_up=False
        )
        return Change.UPDATED

    def suspend(
        self, dispatch_id: DispatchId, update_time: datetime | None = None
    ) -> bool:
        """Stop a dispatch whose newer version cannot be read, until one can.

        Args:
            dispatch_id: The id of the dispatch.
            update_time: The unreadable version's update time, if that much could
                be read; a version older than the one held is ignored.

        Returns:
            Whether a held dispatch was suspended (False if it is not held, was
                already suspended, or the unreadable version is older).
        """
        entry = self._entries.get(_key(dispatch_id))
        if (
            entry is None
            or entry.suspended
            or (update_time is not None and update_time < entry.dispatch.update_time)
        ):
            return False
        self._suspend(entry)
        return True

    def _suspend(self, entry: _Entry) -> None:
        entry.suspended = True
        if entry.window is not None:
            self._send(entry, None)
        if entry.item is not None:
            self._stale_items += 1
            entry.item = None

    def remove(
        self, dispatch_id: DispatchId, deleted_version: Dispatch | None = None
    ) -> Dispatch | None:
        """Remove a deleted dispatch, sending a stop if it was running.

        Args:
            dispatch_id: The id of the deleted dispatch.
            deleted_version: The version the deletion reported, if any; the newer
                of it and the held version is the one reported as deleted.

        Returns:
            The deleted dispatch (marked deleted), or None if it was not held.
        """
        key = _key(dispatch_id)
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        version = entry.dispatch
        if (
            deleted_version is not None
            and deleted_version.update_time > version.update_time
        ):
            version = deleted_version
        deleted = version.as_deleted()
        if entry.window is not None:
            entry.dispatch = deleted
            self._send(entry, None)
        if entry.item is not None:
            self._stale_items += 1
            entry.item = None
        self._tombstones[key] = version.create_time
        if len(self._tombstones) > _MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)
        return deleted

    def advance(self, now: datetime) -> None:
        """Send the running-state events of every change due up to `now`.

        Each change is evaluated at `now`: the events describe the present. A
        window that closed meanwhile is a missed run (counted, logged once per
        dispatch with the count and the span, not sent) unless it started no
        more than `ON_TIME_TOLERANCE` ago; a window still open is started late,
        with its true end. Counting missed runs does not iterate over them, so
        the cost per dispatch does not depend on how long the gap was. At one
        instant, starts are handled before stops, so that under a merge strategy
        a dispatch taking over from another never makes the actor stop and start
        again.

        A wall clock set back by more than `ON_TIME_TOLERANCE` re-evaluates every
        dispatch at the new `now` (what runs then is started, what does not is
        stopped, and runs ahead are sent again when their time comes).

        Args:
            now: The current time.
        """
        now = self._observe(now)
        if not self._heap or self._heap[0][0] > now:
            return
        with gc_paused():
            self._advance(now)
        self.log_missed(now, CAUGHT_UP)

    def log_missed(self, now: datetime, cause: str) -> None:
        """Log the runs counted missed since the last record, as one warning.

        `advance` calls it after every catch-up; after upserts with
        `handled_until`, the caller does.

        Args:
            now: The instant the runs were found missed at.
            cause: Why the process got to them late, for the message.
        """
        if self._catch_up:
            # One record per catch-up, one line per dispatch in it: a week-long
            # suspend with thousands of dispatches must not cost a log call each.
            _logger.warning("%s", _MissedRuns(now, self._catch_up, cause))
            self._catch_up = []

    def dispatches(self) -> list[Dispatch]:
        """Return the versions held of every dispatch (a new list).

        Returns:
            The dispatches.
        """
        return [entry.dispatch for entry in self._entries.values()]

    def _observe(self, now: datetime) -> datetime:
        # Returns the instant to evaluate at: `now`, unless the clock went back
        # by a hair, which is treated as standing still.
        last = self._now
        if last is not None and now < last:
            if last - now <= ON_TIME_TOLERANCE:
                return last
            self._now = now
            with gc_paused():
                self._rewind(now)
            return now
        self._now = now
        return now

    def _rewind(self, now: datetime) -> None:
        for entry in list(self._entries.values()):
            if entry.suspended:
                continue
            window = entry.dispatch.window_at(now)
            if window != entry.window:
                self._send(entry, window)
            entry.seen = now
            self._reschedule(entry, now)

    def _advance(self, now: datetime) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            key = item[2]
            entry = self._entries.get(key)
            if entry is None or entry.item is not item:
                self._stale_items -= 1
                continue
            entry.item = None
            try:
                self._evaluate(entry, now, reconfigure=False, catching_up=True)
            except Exception:
                # One dispatch the recurrence engine chokes on must not stop the
                # schedule for every other one.
                _logger.exception("Dropping dispatch %s: its schedule failed", key)
                self._entries.pop(key, None)

    def _evaluate(
        self, entry: _Entry, now: datetime, *, reconfigure: bool, catching_up: bool
    ) -> None:
        # Brings one entry to `now`: on-time runs that already closed are sent as
        # a start and a stop, older closed ones are missed (only when catching up:
        # a new version's past is not something the library failed to do), and
        # the window open now is started, or the one that was open is stopped.
        dispatch = entry.dispatch
        after = now - ON_TIME_TOLERANCE
        if catching_up and entry.seen is not None:
            self._count_missed(entry, after, now)
            if entry.seen >= after:
                after = entry.seen + _TICK
        if entry.fired is not None and entry.fired >= after:
            after = entry.fired + _TICK
        for closed in dispatch.closed_windows(after, now):
            self._send(entry, closed)
            self._send(entry, None)
            entry.fired = closed.start
        window = dispatch.window_at(now)
        if window is not None:
            if window != entry.window or reconfigure:
                self._send(entry, window)
        elif entry.window is not None:
            self._send(entry, None)
        entry.seen = now
        self._reschedule(entry, now)

    def _count_missed(self, entry: _Entry, before: datetime, now: datetime) -> None:
        assert entry.seen is not None
        dispatch = entry.dispatch
        count, first, last = dispatch.closed_runs_between(entry.seen, before, now)
        if not count:
            return
        self._missed[dispatch.type] = self._missed.get(dispatch.type, 0) + count
        if self._on_missed is not None:
            self._on_missed(dispatch.type, count)
        assert first is not None and last is not None
        self._catch_up.append((int(dispatch.id), dispatch.type, count, first, last))

    def _send(self, entry: _Entry, window: Window | None) -> None:
        dispatch = entry.dispatch
        message = dispatch.with_running_state(window)
        entry.window = window
        running = self._running.setdefault(dispatch.type, {})
        key = _key(dispatch.id)
        running.pop(key, None)
        if window is not None:
            running[key] = entry
        elif not running:
            del self._running[dispatch.type]
        self._emit(message)

    def _reschedule(self, entry: _Entry, after: datetime) -> None:
        if entry.item is not None:
            self._stale_items += 1
        due = entry.dispatch.next_change_after(after)
        if due is None:
            entry.item = None
            return
        # Rank 0 sorts the starts of an instant before its stops.
        item = (due, 1 if entry.window is not None else 0, _key(entry.dispatch.id))
        entry.item = item
        heapq.heappush(self._heap, item)
        if self._stale_items > max(_MIN_HEAP_REBUILD, len(self._heap) // 2):
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        self._heap = [
            item
            for item in self._heap
            if (entry := self._entries.get(item[2])) is not None and entry.item is item
        ]
        heapq.heapify(self._heap)
        self._stale_items = 0

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while heap:
            top = heap[0]
            entry = self._entries.get(top[2])
            if entry is not None and entry.item is top:
                return
            heapq.heappop(heap)
            self._stale_items -= 1
