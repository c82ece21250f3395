# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The dispatch type: the client's dispatch plus when it runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Final

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.types import Dispatch as BaseDispatch
from frequenz.client.dispatch.types import DispatchId, TargetComponents

from ._clock import wall_clock
from ._deprecation import warn_deprecated
from ._recurrence import Occurrences

if TYPE_CHECKING:
    from ._deprecated import RunningState

_NO_RUNS: Final = Occurrences(
    datetime(2000, 1, 1, tzinfo=timezone.utc),
    RecurrenceRule(
        frequency=Frequency.YEARLY, interval=1, bymonths=[2], bymonthdays=[31]
    ),
)
"""An empty set of runs (31 February), for a dispatch that cannot be read."""
_BASE_FIELDS: Final = tuple(field.name for field in dataclasses.fields(BaseDispatch))
_STATE: Final = (*_BASE_FIELDS, "deleted", "_occurrences_cache", "_running_snapshot")
"""Every instance attribute a dispatch can have, in the order they are set."""
_new: Final = object.__new__
_set: Final = object.__setattr__
"""Sets an attribute of a frozen dispatch that is being built."""
_ZERO: Final = timedelta(0)
_TICK: Final = timedelta(microseconds=1)
"""The resolution of datetimes: `t + _TICK` is the first instant after `t`."""


@dataclass(frozen=True, slots=True)
class Window:
    """One run of a dispatch: from an occurrence start to its end."""

    start: datetime
    """When the run started."""

    end: datetime | None
    """When the run ends, `None` for a dispatch without duration (it never ends)."""


@dataclass(frozen=True, slots=True)
class _RunningSnapshot:
    """The running state a running-state event was sent with."""

    started: bool
    until: datetime | None


@dataclass(frozen=True, init=False)
class Dispatch(BaseDispatch):
    """Dispatch type with extra functionality.

    Adds to the client's dispatch whether it is deleted, whether it is running now
    (`started`, `until`) and when it runs (`next_run`, `next_run_after`,
    `missed_runs`). Every computation jumps straight to the occurrences around the
    time asked about, so its cost does not grow with the dispatch's age.

    Dispatches received from a running-state receiver carry the running state they
    were sent with: `started` and `until` answer as of that event, so a consumer that
    reads a message late never sees a start turn into a stop.

    `started`, `until`, `next_run` and `missed_runs` read the system's wall clock
    (a dispatch is a plain value users keep and compare, so it carries no clock of
    its own); `started_at`, `next_run_after` take the instant explicitly. Tests
    move the wall clock with the event loop through time-machine's public API:
    `frequenz.dispatch.testing.FakeClock` does it.
    """

    deleted: bool = False
    """Whether the dispatch is deleted."""

    # Memory: instances keep their attributes in CPython's key-sharing instance
    # values (one array of pointers, the names shared by the class) as long as
    # nothing reads `__dict__`, which would add a dict object to each. So the
    # state below is read as attributes (these class-level defaults answer while
    # unset) and copies set attributes one by one instead of updating a dict.
    _occurrences_cache: ClassVar[Occurrences | datetime | Exception | None] = None
    """The runs, computed on first use: the `Occurrences` of a recurring dispatch,
    the start (in UTC) of one that runs once (no object held for it), or why its
    runs cannot be interpreted."""

    _running_snapshot: ClassVar[_RunningSnapshot | None] = None
    """Set on the copies sent as running-state events only."""

    def __init__(self, client_dispatch: BaseDispatch, deleted: bool = False) -> None:
        """Initialize the dispatch.

        Args:
            client_dispatch: The client dispatch.
            deleted: Whether the dispatch is deleted.
        """
        super().__init__(
            **{name: getattr(client_dispatch, name) for name in _BASE_FIELDS}
        )
        # The dataclass is frozen; this is its constructor, so setting is safe.
        object.__setattr__(self, "deleted", deleted)

    @property
    def started(self) -> bool:
        """Check if the dispatch is started.

        A dispatch is started when it is not deleted, is active, and now lies in one
        of its run windows. For a dispatch received as a running-state event, this
        is the state the event was sent with.

        Returns:
            True if the dispatch is started, False otherwise.
        """
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot.started
        return self.started_at(wall_clock())

    def started_at(self, now: datetime) -> bool:
        """Check if the dispatch is started at a given time.

        Args:
            now: The time to check at (timezone-aware).

        Returns:
            True if the dispatch is started at `now`, False otherwise.
        """
        return self.window_at(now) is not None

    @property
    def until(self) -> datetime | None:
        """Time when the dispatch should end.

        Returns the time that a running dispatch should end. If the dispatch is not
        running, or it has no duration and so never ends, `None` is returned. For a
        dispatch received as a running-state event, this is the end of the run the
        event was sent for.

        Returns:
            The time when the dispatch should end or None if the dispatch is not
                running.
        """
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot.until
        window = self.window_at(wall_clock())
        return None if window is None else window.end

    @property
    def next_run(self) -> datetime | None:
        """Calculate the next run of a dispatch.

        Returns:
            The next run of the dispatch or None if the dispatch is finished.
        """
        return self.next_run_after(wall_clock())

    def next_run_after(self, after: datetime) -> datetime | None:
        """Calculate the next run of a dispatch.

        Args:
            after: The time to calculate the next run from (timezone-aware).

        Returns:
            The first run that starts at or after `after`, or None if there is none.
        """
        return self._occurrences.next_at_or_after(after)

    def missed_runs(self, since: datetime) -> Iterator[datetime]:
        """Yield all missed runs of a dispatch.

        Yields the start of every run from `since` (included) up to now (excluded),
        in order, each once.

        Args:
            since: The time to start checking for missed runs (timezone-aware).

        Yields:
            datetime: The missed run.
        """
        now = wall_clock()
        for occurrence in self._occurrences.iter_from(since):
            if occurrence >= now:
                return
            yield occurrence

    def window_at(self, when: datetime) -> Window | None:
        """Return the run window that contains a given time.

        For the library's internal use (the schedule calls it); not part of the
        documented API.

        Args:
            when: The time to look at (timezone-aware).

        Returns:
            The window containing `when`, or None when the dispatch does not run then
                (it is deleted, inactive, or `when` lies between runs).
        """
        if self.deleted or not self.active:
            return None
        start = self._occurrences.latest_at_or_before(when)
        if start is None:
            return None
        if self.duration is None:
            return Window(start, None)
        # All windows have the same length, so the latest one to start is also the
        # latest to end: if it does not contain `when`, no earlier one does.
        end = start + self.duration
        return Window(start, end) if when < end else None

    def next_change_after(self, when: datetime) -> datetime | None:
        """Return the next instant after `when` at which a run starts or ends.

        For the library's internal use (the schedule calls it); not part of the
        documented API.

        Args:
            when: The time to look after (timezone-aware).

        Returns:
            The next window start or end strictly after `when`, or None if the
                running state never changes again. A zero-duration run starts and
                ends at the same instant, which is returned once.
        """
        if self.deleted or not self.active:
            return None
        window = self.window_at(when)
        if window is not None and window.end is None:
            return None
        next_start = self._occurrences.next_after(when)
        if window is None:
            return next_start
        if next_start is None or (window.end is not None and window.end < next_start):
            return window.end
        return next_start

    def closed_windows(self, after: datetime, now: datetime) -> list[Window]:
        """Return the windows that start at or after `after` and end by `now`.

        For the library's internal use (the schedule calls it with `after` no more
        than its on-time tolerance before `now`, which bounds the list: runs start
        on whole seconds, so a one-second span holds at most two).

        Args:
            after: The earliest start (included).
            now: The instant by which the windows have ended (included).

        Returns:
            The windows, in order.
        """
        duration = self.duration
        if self.deleted or not self.active or duration is None:
            return []
        closed: list[Window] = []
        for start in self._occurrences.iter_from(after):
            if start > now or start + duration > now:
                break
            closed.append(Window(start, start + duration))
        return closed

    def closed_runs_between(
        self, after: datetime, before: datetime, now: datetime
    ) -> tuple[int, datetime | None, datetime | None]:
        """Count the runs that start in `(after, before)` and end by `now`.

        For the library's internal use (the schedule counts missed runs with it).
        The count does not iterate over the runs, so a long gap costs no more
        than a short one.

        Args:
            after: Runs must start strictly after this.
            before: Runs must start strictly before this.
            now: Runs must have ended by this (included).

        Returns:
            The number of runs, the first one's start and the last one's start
                (both None when there is none).
        """
        duration = self.duration
        if self.deleted or not self.active or duration is None:
            return 0, None, None
        lower = after + _TICK
        upper = min(before, now - duration + _TICK)
        if upper <= lower:
            return 0, None, None
        occurrences = self._occurrences
        first = occurrences.next_at_or_after(lower)
        last = occurrences.latest_at_or_before(upper - _TICK)
        if first is None or last is None or last < first:
            return 0, None, None
        return occurrences.count_between(first, last + _TICK), first, last

    @property
    def _occurrences(self) -> Occurrences:
        """The start times of this dispatch's runs.

        A dispatch without duration runs once, from `start_time` on, whatever its
        recurrence rule says. One whose start time or rule cannot be interpreted
        never runs, so that no property raises for it; `validate` reports why.
        """
        cached = self._occurrences_cache
        if isinstance(cached, Occurrences):
            return cached
        if cached is None:
            cached = self._compute_occurrences()
        if isinstance(cached, datetime):
            # Built per query (a few hundred ns) rather than held by each of the
            # many dispatches that run once.
            return Occurrences.single(cached)
        if isinstance(cached, Occurrences):
            return cached
        return _NO_RUNS

    def _compute_occurrences(self) -> Occurrences | datetime | Exception:
        computed: Occurrences | datetime | Exception
        rule = None if self.duration is None else self.recurrence
        try:
            computed = Occurrences(self.start_time, rule)
        except (ValueError, TypeError, OverflowError) as error:
            computed = error
        else:
            if computed.single_start is not None:
                computed = computed.single_start
        object.__setattr__(self, "_occurrences_cache", computed)
        return computed

    def validate(self) -> None:
        """Check that this dispatch can be scheduled.

        For the library's internal use (the schedule calls it); not part of the
        documented API. A rule that never produces a run is valid.

        Raises:
            ValueError: If a field cannot be interpreted (naive datetime,
                malformed recurrence rule, negative duration); the message names
                the dispatch and the field.
        """
        if self.duration is not None and self.duration < _ZERO:
            raise ValueError(
                f"dispatch {int(self.id)}: duration must not be negative, "
                f"got {self.duration}"
            )
        _ = self._occurrences
        error = self._occurrences_cache
        if isinstance(error, Exception):
            raise ValueError(f"dispatch {int(self.id)}: {error}") from error

    def running(self, type_: str) -> RunningState:
        """Return the running state of this dispatch for a dispatch type.

        Deprecated:
            Use a running-state receiver for the type
            (`Dispatcher.new_running_state_event_receiver`) and read `started`.

        Args:
            type_: The dispatch type the caller handles.

        Returns:
            `DIFFERENT_TYPE` for another type, else `RUNNING` or `STOPPED`.
        """
        # Imported here: the deprecated module imports nothing of ours, but only
        # code using the old API should load it.
        from ._deprecated import RunningState

        warn_deprecated(
            "Dispatch.running(type)",
            "use Dispatcher.new_running_state_event_receiver(type) and read "
            "dispatch.started instead",
        )
        if self.type != type_:
            return RunningState.DIFFERENT_TYPE
        return RunningState.RUNNING if self.started else RunningState.STOPPED

    @property
    def _snapshot(self) -> _RunningSnapshot | None:
        return self._running_snapshot

    @classmethod
    def from_values(  # noqa: PLR0917  # positional: called per dispatch decoded
        cls,
        id: DispatchId,  # pylint: disable=redefined-builtin
        type: str,  # pylint: disable=redefined-builtin
        start_time: datetime,
        duration: timedelta | None,
        target: TargetComponents,
        active: bool,
        dry_run: bool,
        payload: dict[str, Any],
        recurrence: RecurrenceRule,
        create_time: datetime,
        update_time: datetime,
        end_time: datetime | None,
    ) -> Dispatch:
        """Build a dispatch from its field values, without validation.

        For the library's internal use (the wire and cache decoders call it); not
        part of the documented API.

        The dataclass constructor costs about 20 µs; building thousands of
        dispatches at sync time can skip it, since the values come from the
        client's own conversion functions. The attributes are set one by one (in
        the order of the class's shared keys) so that the dispatch holds them in
        its instance values, without a dict of its own.

        Args:
            id: The dispatch's id.
            type: Its type.
            start_time: Its start time.
            duration: Its duration.
            target: Its target.
            active: Whether it is active.
            dry_run: Whether it is a dry run.
            payload: Its payload.
            recurrence: Its recurrence rule.
            create_time: When it was created.
            update_time: When it was last updated.
            end_time: When it ends, if known.

        Returns:
            The dispatch (not deleted).
        """
        dispatch = _new(cls)
        _set(dispatch, "id", id)
        _set(dispatch, "type", type)
        _set(dispatch, "start_time", start_time)
        _set(dispatch, "duration", duration)
        _set(dispatch, "target", target)
        _set(dispatch, "active", active)
        _set(dispatch, "dry_run", dry_run)
        _set(dispatch, "payload", payload)
        _set(dispatch, "recurrence", recurrence)
        _set(dispatch, "create_time", create_time)
        _set(dispatch, "update_time", update_time)
        _set(dispatch, "end_time", end_time)
        _set(dispatch, "deleted", False)
        return dispatch

    def _copy(self, deleted: bool, snapshot: _RunningSnapshot | None) -> Dispatch:
        # Attribute by attribute, like `from_values`, rather than through
        # `__dict__`: reading this dispatch's `__dict__` would add a dict to it
        # for good, and copies held as running-state events stay compact too.
        duplicate = _new(type(self))
        _set(duplicate, "id", self.id)
        _set(duplicate, "type", self.type)
        _set(duplicate, "start_time", self.start_time)
        _set(duplicate, "duration", self.duration)
        _set(duplicate, "target", self.target)
        _set(duplicate, "active", self.active)
        _set(duplicate, "dry_run", self.dry_run)
        _set(duplicate, "payload", self.payload)
        _set(duplicate, "recurrence", self.recurrence)
        _set(duplicate, "create_time", self.create_time)
        _set(duplicate, "update_time", self.update_time)
        _set(duplicate, "end_time", self.end_time)
        _set(duplicate, "deleted", deleted)
        _set(duplicate, "_occurrences_cache", self._occurrences_cache)
        _set(duplicate, "_running_snapshot", snapshot)
        return duplicate

    def as_deleted(self) -> Dispatch:
        """Return a copy of this dispatch marked as deleted.

        For the library's internal use (the schedule calls it); not part of the
        documented API.

        Returns:
            A new dispatch, equal to this one but for `deleted`.
        """
        return self._copy(True, None)

    def with_running_state(self, window: Window | None) -> Dispatch:
        """Return a copy of this dispatch whose running state is fixed.

        For the library's internal use (the schedule calls it); not part of the
        documented API.

        Args:
            window: The window the dispatch runs in, or None if it is stopped.

        Returns:
            A new dispatch, equal to this one, whose `started` and `until` answer as
                of the given window whenever they are read.
        """
        return self._copy(
            self.deleted,
            _RunningSnapshot(
                started=window is not None,
                until=None if window is None else window.end,
            ),
        )


def _share_keys() -> None:
    # The first instance to set attributes fixes the class's shared keys; one
    # that sets all of them in a fixed order makes every later dispatch (built
    # by the dataclass constructor, `from_values` or a copy) keep its attributes
    # in instance values sized for exactly these, not in a dict.
    prototype = _new(Dispatch)
    for name in _STATE:
        _set(prototype, name, None)


_share_keys()
