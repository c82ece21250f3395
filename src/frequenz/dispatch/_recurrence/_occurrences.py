# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Start times of a recurring dispatch, computed without walking from its first run.

The occurrence set is exactly that of the dateutil `rrule` built by
`RecurrenceRule._as_rrule`, but dateutil can only iterate from `dtstart`, so its
cost grows with the dispatch's age. Here, rules without by-fields on a fixed-length
frequency are pure arithmetic on the period; every other rule is navigated day by
day from the query time, jumping over months and periods that cannot match. The
`count` end criterion is turned into an end instant once, when a query gets close
enough to need it, by counting whole cycles of the rule's repeating pattern.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule

from ._calendar import DAY, MAX_DAY, WEEKDAY
from ._counting import count_from_to, nth_occurrence
from ._grid import Grid

_UTC = timezone.utc
_EPOCH = datetime(1, 1, 1, tzinfo=_UTC)
_MAX_INSTANT = (MAX_DAY + 1) * DAY - 1
_STEP_SECONDS = {
    Frequency.MINUTELY: 60,
    Frequency.HOURLY: 3_600,
    Frequency.DAILY: DAY,
    Frequency.WEEKLY: 7 * DAY,
}


class Occurrences:
    """Start times of a dispatch's runs, in time independent of the dispatch's age.

    Occurrences are whole seconds (dateutil drops the start's microseconds) and
    by-fields are read in UTC. Without a recurrence, or with an unspecified
    frequency, `start_time` itself is the only occurrence.
    """

    __slots__ = ("_count", "_end", "_first", "_grid", "_single", "_start", "_step")

    def __init__(self, start_time: datetime, recurrence: RecurrenceRule | None) -> None:
        """Prepare the occurrences of a rule.

        Args:
            start_time: Start of the dispatch (timezone-aware).
            recurrence: The recurrence rule, or None for a single run.

        Raises:
            TypeError: If `start_time` is not a datetime.
            ValueError: If `start_time` or `until` is naive, or the rule has a field
                the scheduler cannot interpret. A rule that can never produce an
                occurrence (31 February) is valid: it is empty (`is_empty`).
        """
        if not isinstance(start_time, datetime):
            raise TypeError(f"start_time must be a datetime, got {start_time!r}")
        _check_aware(start_time, "start_time")
        self._single: datetime | None = None
        self._grid: Grid | None = None
        self._count: int | None = None
        self._step = 0
        if recurrence is None or recurrence.frequency == Frequency.UNSPECIFIED:
            self._single = start_time.astimezone(_UTC)
            self._start = self._first = self._end = 0
            return
        _check_rule(recurrence)
        self._start = _split(start_time)[0]
        self._end = _MAX_INSTANT
        criteria = recurrence.end_criteria
        if criteria is not None and criteria.until is not None:
            self._end = min(self._end, _split(criteria.until)[0])
        count = None if criteria is None else criteria.count
        if _has_by_fields(recurrence) or recurrence.frequency not in _STEP_SECONDS:
            self._grid = Grid(recurrence, self._start)
            first_day = self._start // DAY
            stop = min(first_day + self._grid.cycle_days, MAX_DAY)
            first = self._grid.first_at_or_after(self._start, stop)
            if first is None:
                # Its frequency, interval and by-fields exclude each other: a
                # valid rule that never runs. An end before the start says so.
                self._first = self._start
                self._end = self._start - 1
                return
            self._first = first
            self._count = count
        else:
            self._step = _STEP_SECONDS[recurrence.frequency] * recurrence.interval
            self._first = self._start
            if count is not None:
                self._end = min(self._end, self._start + (count - 1) * self._step)

    @classmethod
    def single(cls, start: datetime) -> Occurrences:
        """Return the occurrences of a single run, without checking its start.

        For a start a constructor already checked and converted (see
        `single_start`): cheaper than the constructor, so that a dispatch that
        runs once can hold its start instead of an `Occurrences`.

        Args:
            start: The run's start, timezone-aware, in UTC.

        Returns:
            The occurrences.
        """
        occurrences = object.__new__(cls)
        occurrences._single = start
        return occurrences

    @property
    def single_start(self) -> datetime | None:
        """The start (in UTC) of the only run, None for a recurring rule."""
        return self._single

    @property
    def is_empty(self) -> bool:
        """Whether the rule never produces an occurrence.

        True for rules whose by-fields exclude each other (31 February) and for
        those whose `until` lies before their first run.
        """
        return self._single is None and self._next(self._start) is None

    def count_between(self, start: datetime, end: datetime) -> int:
        """Count the occurrences in `[start, end)` without iterating over them.

        Fixed-period rules divide; calendar rules count whole cycles of their
        pattern by division and walk at most one cycle, memoised per year and
        month, so the cost does not grow with the span beyond that.

        Args:
            start: The first instant counted (timezone-aware).
            end: The first instant not counted (timezone-aware).

        Returns:
            The number of occurrences.
        """
        if self._single is not None:
            return int(_aware(start) <= self._single < _aware(end))
        first = self._next(_ceil_seconds(start))
        if first is None:
            return 0
        last = self._prev(_ceil_seconds(end) - 1)
        if last is None or last < first:
            return 0
        if self._grid is None:
            return (last - first) // self._step + 1
        return count_from_to(self._grid, first, last)

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """Return the last occurrence that starts at or before a time.

        Args:
            t: The time (timezone-aware).

        Returns:
            The occurrence, or None if there is none at or before `t`.
        """
        if self._single is not None:
            return self._single if self._single <= _aware(t) else None
        found = self._prev(_split(t)[0])
        return None if found is None else _EPOCH + timedelta(seconds=found)

    def next_after(self, t: datetime) -> datetime | None:
        """Return the first occurrence that starts strictly after a time.

        Args:
            t: The time (timezone-aware).

        Returns:
            The occurrence, or None if there is none after `t`.
        """
        if self._single is not None:
            return self._single if self._single > _aware(t) else None
        found = self._next(_split(t)[0] + 1)
        return None if found is None else _EPOCH + timedelta(seconds=found)

    def next_at_or_after(self, t: datetime) -> datetime | None:
        """Return the first occurrence that starts at or after a time.

        Args:
            t: The time (timezone-aware).

        Returns:
            The occurrence, or None if there is none at or after `t`.
        """
        if self._single is not None:
            return self._single if self._single >= _aware(t) else None
        found = self._next(_ceil_seconds(t))
        return None if found is None else _EPOCH + timedelta(seconds=found)

    def iter_from(self, t: datetime) -> Iterator[datetime]:
        """Iterate lazily over the occurrences at or after a time, in order.

        Args:
            t: The time (timezone-aware).

        Returns:
            An iterator that ends after the last occurrence of a finite rule.
        """
        if self._single is not None:
            return iter(() if self._single < _aware(t) else (self._single,))
        return self._iter(self._next(_ceil_seconds(t)))

    def _iter(self, found: int | None) -> Iterator[datetime]:
        """Yield occurrences from an already found one on."""
        while found is not None:
            yield _EPOCH + timedelta(seconds=found)
            found = self._next(found + 1)

    def _next(self, at: int) -> int | None:
        """Return the first occurrence at or after an instant (whole seconds)."""
        at = max(at, self._start)
        if at > self._end:
            return None
        if self._grid is None:
            step = self._start - (self._start - at) // self._step * self._step
            return step if step <= self._end else None
        found = self._grid.first_at_or_after(at, self._end // DAY)
        if found is None or found > self._limit(found):
            return None
        return found

    def _prev(self, at: int) -> int | None:
        """Return the last occurrence at or before an instant (whole seconds)."""
        at = min(at, self._end)
        if at < self._first:
            return None
        if self._grid is None:
            return at - (at - self._start) % self._step
        at = min(at, self._limit(at))
        return self._grid.last_at_or_before(at, self._first // DAY)

    def _limit(self, at: int) -> int:
        """Return the last allowed instant, resolving `count` only when `at` needs it.

        Resolving costs up to a walk of one cycle of the rule, so it is skipped
        while not even `per_day` occurrences every day since the start could have
        used up the count.
        """
        if self._count is not None and self._grid is not None:
            days = at // DAY - self._start // DAY + 1
            if days * self._grid.times.max_per_day > self._count:
                self._end = min(self._end, nth_occurrence(self._grid, self._count))
                self._count = None
        return self._end


def _has_by_fields(rule: RecurrenceRule) -> bool:
    return bool(
        rule.byminutes
        or rule.byhours
        or rule.byweekdays
        or rule.bymonthdays
        or rule.bymonths
    )


def _check_rule(rule: RecurrenceRule) -> None:
    """Reject what dateutil would reject, or silently misread.

    Raises:
        ValueError: Naming the offending field.
    """
    if rule.frequency not in Frequency.__members__.values():
        raise ValueError(f"recurrence.frequency is unknown: {rule.frequency!r}")
    if rule.interval < 1:
        raise ValueError(f"recurrence.interval must be at least 1, got {rule.interval}")
    for name, values, low, high in (
        ("byminutes", rule.byminutes, 0, 59),
        ("byhours", rule.byhours, 0, 23),
        ("bymonths", rule.bymonths, 1, 12),
    ):
        for value in values:
            if not low <= value <= high:
                raise ValueError(
                    f"recurrence.{name} must be in {low}..{high}, got {value}"
                )
    for value in rule.bymonthdays:
        if not 1 <= abs(value) <= 31:
            raise ValueError(
                f"recurrence.bymonthdays must be in 1..31 or -31..-1, got {value}"
            )
    for weekday in rule.byweekdays:
        if weekday not in WEEKDAY:
            raise ValueError(f"recurrence.byweekdays must name days, got {weekday!r}")
    criteria = rule.end_criteria
    if criteria is not None and criteria.count is not None and criteria.count < 1:
        raise ValueError(
            f"recurrence.end_criteria.count must be at least 1, got {criteria.count}"
        )
    if criteria is not None and criteria.until is not None:
        _check_aware(criteria.until, "recurrence.end_criteria.until")


def _check_aware(when: datetime, name: str) -> None:
    """Raise ValueError naming `name` if `when` is naive."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {when!r}")


def _aware(t: datetime) -> datetime:
    """Return `t`, after checking that it can be compared with UTC times."""
    _check_aware(t, "t")
    return t


def _split(t: datetime) -> tuple[int, int]:
    """Return whole seconds since the epoch (floored) and the microseconds left."""
    _check_aware(t, "t")
    delta = t - _EPOCH
    return delta.days * DAY + delta.seconds, delta.microseconds


def _ceil_seconds(t: datetime) -> int:
    """Return the first whole second at or after `t`, since the epoch."""
    seconds, micro = _split(t)
    return seconds + (micro > 0)
