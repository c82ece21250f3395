# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The schedule: every dispatch's running state on one timeline.

Each dispatch has one entry holding its latest version, the window it was last
reported running in, and the next instant at which that can change. The instants
live in one heap, so adding, removing or rescheduling a dispatch costs O(log n) and
finding what is due costs O(1). Replaced heap items are left in place and skipped
when they surface (lazy deletion); when they outnumber the live ones the heap is
rebuilt, which keeps memory bounded at an amortized O(1) per operation.

Everything here is synchronous: the scheduler service calls it from one task at a
time, so no state is ever seen half-updated.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from frequenz.client.dispatch.types import DispatchId

from ._dispatch import Dispatch, Window
from ._gc import gc_paused

_logger = logging.getLogger(__name__)

_MAX_TOMBSTONES = 100_000
"""How many deleted ids are remembered to reject late events for them."""

_MIN_HEAP_REBUILD = 1024
"""Below this many stale heap items a rebuild is not worth it."""


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


class _HeapItem(NamedTuple):
    """One scheduled instant; items compare field by field, in this order."""

    due: datetime
    """When the dispatch's running state may change."""
    rank: int
    """0 for a start, 1 for a stop: at one instant, starts come first."""
    token: int
    """The entry's token when pushed; an item whose token is outdated is stale."""
    dispatch_id: DispatchId
    """The dispatch the instant belongs to."""


@dataclass(slots=True)
class _Entry:
    dispatch: Dispatch
    window: Window | None = None
    """The window of the last running-state event sent, None if stopped."""
    due: datetime | None = None
    token: int = 0
    """Identifies the entry's live heap item; older items are stale."""


class Schedule:
    """The running state of every dispatch of a microgrid, and when it changes."""

    def __init__(self, emit: Callable[[Dispatch], None]) -> None:
        """Initialize an empty schedule.

        Args:
            emit: Called with every running-state event, in order. The dispatch it
                gets has its running state fixed as of the event.
        """
        self._emit = emit
        self._entries: dict[DispatchId, _Entry] = {}
        self._heap: list[_HeapItem] = []
        self._stale_items = 0
        self._tokens = itertools.count(1)
        # Deleted ids with the `create_time` of the dispatch that had them.
        self._tombstones: OrderedDict[DispatchId, datetime] = OrderedDict()
        # The entries running now, per type, in the order they started. Entries
        # rather than the start events sent: a copy of every running dispatch
        # would be held for as long as it runs; the event is rebuilt on demand.
        self._running: dict[str, dict[DispatchId, _Entry]] = {}

    def __len__(self) -> int:
        """Return the number of dispatches held."""
        return len(self._entries)

    def ids(self) -> list[DispatchId]:
        """Return the ids of the dispatches held.

        Returns:
            The ids.
        """
        return list(self._entries)

    def get(self, dispatch_id: DispatchId) -> Dispatch | None:
        """Return the version held of a dispatch.

        Args:
            dispatch_id: The id.

        Returns:
            The dispatch, or None if it is not held.
        """
        entry = self._entries.get(dispatch_id)
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

    def next_due(self) -> datetime | None:
        """Return when the next running state may change.

        Returns:
            The earliest scheduled instant, or None if nothing is scheduled.
        """
        self._drop_stale_top()
        return self._heap[0].due if self._heap else None

    def forget_deletions(self) -> None:
        """Forget which ids were deleted.

        Called before reconciling a full list, which is authoritative: a
        dispatch it contains exists, whatever the stream said before.
        """
        self._tombstones.clear()

    def upsert(
        self, dispatch: Dispatch, now: datetime, *, authoritative: bool = False
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

        Returns:
            What the change did.
        """
        deleted_created = self._tombstones.get(dispatch.id)
        if deleted_created is not None:
            if not authoritative and dispatch.create_time <= deleted_created:
                # A version of the deleted dispatch itself that still arrives
                # (queued before a re-sync's list, or late) is stale; a later
                # `create_time` means the id was reused (the service lost its data).
                return Change.STALE
            del self._tombstones[dispatch.id]
        entry = self._entries.get(dispatch.id)
        if entry is not None:
            if not authoritative and dispatch.update_time < entry.dispatch.update_time:
                return Change.STALE
            if dispatch == entry.dispatch:
                return Change.UNCHANGED
        try:
            dispatch.validate()
            window = dispatch.window_at(now)
        except ValueError as error:
            _logger.error("Skipping a dispatch that cannot be scheduled: %s", error)
            return Change.INVALID

        if entry is None:
            entry = _Entry(dispatch)
            self._entries[dispatch.id] = entry
            if window is not None:
                self._send(entry, window)
            self._reschedule(entry, now)
            return Change.CREATED

        old = entry.dispatch
        if entry.window is not None and old.type != dispatch.type:
            # Consumers subscribe per type: the old type's must see it stop.
            self._send(entry, None)
        entry.dispatch = dispatch
        if window != entry.window or (
            window is not None and _reconfigures(old, dispatch)
        ):
            self._send(entry, window)
        self._reschedule(entry, now)
        return Change.UPDATED

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
        entry = self._entries.pop(dispatch_id, None)
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
        if entry.due is not None:
            self._stale_items += 1
        self._tombstones[dispatch_id] = version.create_time
        if len(self._tombstones) > _MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)
        return deleted

    def advance(self, now: datetime) -> None:
        """Send the running-state events of every change due up to `now`.

        Each change is evaluated at the instant it was due, not at `now`, so a
        late wake-up still reports every window that started and ended meanwhile,
        in order. At one instant, starts are handled before stops, so that under
        a merge strategy a dispatch taking over from another never makes the actor
        stop and start again.

        Args:
            now: The current time.
        """
        if not self._heap or self._heap[0].due > now:
            return
        with gc_paused():
            self._advance(now)

    def _advance(self, now: datetime) -> None:
        heap = self._heap
        while heap and heap[0].due <= now:
            due, _, token, dispatch_id = heapq.heappop(heap)
            entry = self._entries.get(dispatch_id)
            if entry is None or entry.token != token:
                self._stale_items -= 1
                continue
            entry.due = None
            try:
                window = entry.dispatch.window_at(due)
                if window != entry.window:
                    self._send(entry, window)
                self._reschedule(entry, due)
            except Exception:
                # One dispatch the recurrence engine chokes on must not stop the
                # schedule for every other one.
                _logger.exception(
                    "Dropping dispatch %s: its schedule failed", int(dispatch_id)
                )
                self._entries.pop(dispatch_id, None)

    def _send(self, entry: _Entry, window: Window | None) -> None:
        dispatch = entry.dispatch
        message = dispatch.with_running_state(window)
        entry.window = window
        running = self._running.setdefault(dispatch.type, {})
        running.pop(dispatch.id, None)
        if window is not None:
            running[dispatch.id] = entry
        elif not running:
            del self._running[dispatch.type]
        self._emit(message)

    def _reschedule(self, entry: _Entry, after: datetime) -> None:
        if entry.due is not None:
            self._stale_items += 1
        due = entry.dispatch.next_change_after(after)
        entry.due = due
        entry.token = next(self._tokens)
        if due is None:
            return
        # Rank 0 sorts the starts of an instant before its stops.
        rank = 1 if entry.window is not None else 0
        heapq.heappush(self._heap, _HeapItem(due, rank, entry.token, entry.dispatch.id))
        if self._stale_items > max(_MIN_HEAP_REBUILD, len(self._heap) // 2):
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        self._heap = [
            item
            for item in self._heap
            if (entry := self._entries.get(item.dispatch_id)) is not None
            and entry.token == item.token
        ]
        heapq.heapify(self._heap)
        self._stale_items = 0

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while heap:
            top = heap[0]
            entry = self._entries.get(top.dispatch_id)
            if entry is not None and entry.token == top.token:
                return
            heapq.heappop(heap)
            self._stale_items -= 1
