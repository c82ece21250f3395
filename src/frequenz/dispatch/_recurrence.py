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

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from math import gcd, lcm

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule, Weekday

from ._recurrence_count import (
    DAY,
    MAX_DAY,
    candidates,
    month_first,
    month_len,
    nth_occurrence,
)

_UTC = timezone.utc
_EPOCH = datetime(1, 1, 1, tzinfo=_UTC)
_MAX_INSTANT = (MAX_DAY + 1) * DAY - 1
_GREGORIAN_DAYS = 146_097
"""Days in 400 Gregorian years, after which dates fall on the same weekdays again."""

_WEEKDAY = {
    Weekday.MONDAY: 0,
    Weekday.TUESDAY: 1,
    Weekday.WEDNESDAY: 2,
    Weekday.THURSDAY: 3,
    Weekday.FRIDAY: 4,
    Weekday.SATURDAY: 5,
    Weekday.SUNDAY: 6,
}
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
                the scheduler cannot interpret, or can never produce an occurrence.
        """
        if not isinstance(start_time, datetime):
            raise TypeError(f"start_time must be a datetime, got {start_time!r}")
        _check_aware(start_time, "start_time")
        self._single: datetime | None = None
        self._grid: _Grid | None = None
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
            self._grid = _Grid(recurrence, self._start)
            first_day = self._start // DAY
            stop = min(first_day + self._grid.cycle_days, MAX_DAY)
            first = self._grid.first_at_or_after(self._start, stop)
            if first is None:
                raise ValueError(
                    "recurrence never produces an occurrence: its frequency, "
                    "interval and by-fields (byminutes, byhours, byweekdays, "
                    "bymonthdays, bymonths) exclude each other"
                )
            self._first = first
            self._count = count
        else:
            self._step = _STEP_SECONDS[recurrence.frequency] * recurrence.interval
            self._first = self._start
            if count is not None:
                self._end = min(self._end, self._start + (count - 1) * self._step)

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
            if days * self._grid.per_day > self._count:
                self._end = min(self._end, nth_occurrence(self._grid, self._count))
                self._count = None
        return self._end


class _Grid:  # pylint: disable=too-many-instance-attributes
    """The unbounded occurrence pattern of a rule, navigated a day at a time.

    A day has occurrences when its month passes `month_skip`, its day of the month
    is among `candidates`, and it passes `day_ok`; `times` gives them as seconds
    of the day, without the rule's constant second `sec`.
    """

    __slots__ = (
        "align",
        "bh",
        "bm",
        "bmd",
        "cycle_days",
        "day_div",
        "k",
        "month_div",
        "month_mask",
        "per_day",
        "phases",
        "sec",
        "start",
        "times_fixed",
        "unit",
        "wd_mask",
        "x0",
    )

    def __init__(self, rule: RecurrenceRule, start: int) -> None:
        day, second_of_day = divmod(start, DAY)
        when = date.fromordinal(day + 1)
        freq, k = rule.frequency, rule.interval
        months, monthdays = set(rule.bymonths), set(rule.bymonthdays)
        weekdays = {_WEEKDAY[weekday] for weekday in rule.byweekdays}
        if not monthdays and not weekdays:  # dateutil's defaults from dtstart
            if freq == Frequency.YEARLY:
                months = months or {when.month}
                monthdays = {when.day}
            elif freq == Frequency.MONTHLY:
                monthdays = {when.day}
            elif freq == Frequency.WEEKLY:
                weekdays = {when.weekday()}
        self.start, self.k, self.sec = start, k, second_of_day % 60
        self.month_mask = sum(1 << month for month in months)
        self.wd_mask = sum(1 << weekday for weekday in weekdays)
        self.bmd = tuple(sorted(monthdays)) or None
        self.bh = tuple(sorted(set(rule.byhours))) or None
        self.bm = tuple(sorted(set(rule.byminutes))) or None
        self.unit = self.x0 = self.day_div = self.month_div = self.align = 0
        self.times_fixed: tuple[int, ...] = ()
        hour, minute = second_of_day // 3600, second_of_day // 60 % 60
        if freq in (Frequency.MINUTELY, Frequency.HOURLY):
            self.unit = 1440 if freq == Frequency.MINUTELY else 24
            self.x0 = start // (DAY // self.unit)
            # At most this many grid slots fall on one day; hourly ones expand.
            self.per_day = -(-self.unit // k)
            if freq == Frequency.HOURLY:
                self.bm = self.bm or (minute,)
                self.per_day *= len(self.bm)
            self.phases = k // gcd(k, self.unit)
        else:
            self.times_fixed = tuple(
                sorted(
                    h * 3600 + m * 60
                    for h in self.bh or (hour,)
                    for m in self.bm or (minute,)
                )
            )
            self.per_day = len(self.times_fixed)
            self.phases = 1 if freq in (Frequency.MONTHLY, Frequency.YEARLY) else k
            if k > 1:
                self.day_div, self.month_div, self.align = {
                    Frequency.DAILY: (1, 0, day),
                    Frequency.WEEKLY: (7, 0, day // 7),
                    Frequency.MONTHLY: (0, 1, 12 * when.year + when.month - 1),
                    Frequency.YEARLY: (0, 12, when.year),
                }[freq]
        calendar = 7 if self.wd_mask else 1
        if self.month_mask or self.bmd or freq in (Frequency.MONTHLY, Frequency.YEARLY):
            calendar = _GREGORIAN_DAYS
        # The pattern repeats once both the interval grid and the calendar do.
        self.cycle_days = {
            Frequency.DAILY: lcm(k, calendar),
            Frequency.WEEKLY: lcm(7 * k, calendar),
            Frequency.MONTHLY: _GREGORIAN_DAYS * (lcm(k, 4800) // 4800),
            Frequency.YEARLY: _GREGORIAN_DAYS * (lcm(k, 400) // 400),
        }.get(freq, lcm(self.phases, calendar))

    def phase(self, first: int) -> int:
        """Return where the interval grid stands on a day, relative to the start.

        Two months of the same length that start on the same weekday and phase
        have the same number of occurrences.

        Args:
            first: The day number.

        Returns:
            The phase, below `phases` distinct values.
        """
        if self.unit:
            return (self.x0 - self.unit * first) % self.k
        return (first // self.day_div - self.align) % self.k if self.day_div else 0

    def times(self, day: int) -> tuple[int, ...]:
        """Return the occurrence times on a day that passes the day filters.

        Args:
            day: The day number.

        Returns:
            Seconds of the day, ascending, without the constant second `sec`.
        """
        if not self.unit:
            return self.times_fixed
        phase = (self.x0 - self.unit * day) % self.k
        return _subdaily_times(self.unit, self.k, phase, self.bh, self.bm)

    def day_ok(self, day: int) -> bool:
        """Tell whether a day of an allowed month and monthday has occurrences.

        Args:
            day: The day number.

        Returns:
            Whether weekday, interval grid and time filters all let it through.
        """
        if self.wd_mask and not self.wd_mask >> day % 7 & 1:
            return False
        if self.day_div:
            return (day // self.day_div - self.align) % self.k == 0
        return not self.unit or bool(self.times(day))

    def month_skip(self, year: int, month: int, forward: bool) -> int:
        """Return how many months to move to reach one that can have occurrences.

        Args:
            year: The year.
            month: The month.
            forward: Whether to move forward (else backward) in time.

        Returns:
            0 if the month itself can have occurrences.
        """
        index = 12 * year + month - 1
        if self.month_div:
            period = index // self.month_div
            off = (period - self.align) % self.k
            if off and forward:
                return (period + self.k - off) * self.month_div - index
            if off:
                return index - (period - off + 1) * self.month_div + 1
        if self.month_mask and not self.month_mask >> month & 1:
            step = 1 if forward else -1
            for skip in range(1, 12):
                if self.month_mask >> (month - 1 + skip * step) % 12 + 1 & 1:
                    return skip
        return 0

    def aligned(self, day: int, forward: bool) -> int:
        """Return the nearest day from `day` on which the interval grid is active.

        Args:
            day: The day number to start from.
            forward: Whether to look forward (else backward) in time.

        Returns:
            The day number; `day` itself for grids active every day.
        """
        if self.day_div:
            period = day // self.day_div
            off = (period - self.align) % self.k
            if not off:
                return day
            if forward:
                return (period + self.k - off) * self.day_div
            return (period - off + 1) * self.day_div - 1
        if self.unit and self.k > self.unit:
            if forward:
                edge = day * self.unit
                return (edge + (self.x0 - edge) % self.k) // self.unit
            edge = day * self.unit + self.unit - 1
            return (edge - (edge - self.x0) % self.k) // self.unit
        return day

    def next_day(self, day: int, stop: int) -> int | None:
        """Return the first day in `[day, stop]` that has occurrences.

        Args:
            day: The first day number to consider.
            stop: The last day number to consider.

        Returns:
            The day number, or None if there is none.
        """
        while day <= stop:
            day = self.aligned(day, True)
            if day > stop:
                return None
            when = date.fromordinal(day + 1)
            skip = self.month_skip(when.year, when.month, True)
            if skip:
                day = month_first(when.year, when.month + skip)
                continue
            first = day - when.day + 1
            days = candidates(self.bmd, month_len(when.year, when.month))
            for monthday in days[bisect_left(days, when.day) :]:
                found = first + monthday - 1
                if found > stop:
                    return None
                if self.day_ok(found):
                    return found
            day = first + month_len(when.year, when.month)
        return None

    def prev_day(self, day: int, stop: int) -> int | None:
        """Return the last day in `[stop, day]` that has occurrences.

        Args:
            day: The last day number to consider.
            stop: The first day number to consider.

        Returns:
            The day number, or None if there is none.
        """
        while day >= stop:
            day = self.aligned(day, False)
            if day < stop:
                return None
            when = date.fromordinal(day + 1)
            skip = self.month_skip(when.year, when.month, False)
            if skip:
                day = month_first(when.year, when.month - skip + 1) - 1
                continue
            first = day - when.day + 1
            days = candidates(self.bmd, month_len(when.year, when.month))
            for monthday in reversed(days[: bisect_right(days, when.day)]):
                found = first + monthday - 1
                if found < stop:
                    return None
                if self.day_ok(found):
                    return found
            day = first - 1
        return None

    def first_at_or_after(self, at: int, stop: int) -> int | None:
        """Return the first occurrence at or after an instant, on days up to `stop`.

        Args:
            at: The instant, in seconds.
            stop: The last day number to search.

        Returns:
            The occurrence, in seconds, or None if there is none.
        """
        day, second = divmod(at, DAY)
        found = self.next_day(day, stop)
        if found == day:
            times = self.times(day)
            index = bisect_left(times, second - self.sec)
            if index < len(times):
                return day * DAY + times[index] + self.sec
            found = self.next_day(day + 1, stop)
        return None if found is None else found * DAY + self.times(found)[0] + self.sec

    def last_at_or_before(self, at: int, stop: int) -> int | None:
        """Return the last occurrence at or before an instant, on days from `stop`.

        Args:
            at: The instant, in seconds.
            stop: The first day number to search.

        Returns:
            The occurrence, in seconds, or None if there is none.
        """
        day, second = divmod(at, DAY)
        found = self.prev_day(day, stop)
        if found == day:
            times = self.times(day)
            index = bisect_right(times, second - self.sec)
            if index:
                return day * DAY + times[index - 1] + self.sec
            found = self.prev_day(day - 1, stop)
        return None if found is None else found * DAY + self.times(found)[-1] + self.sec


@lru_cache(maxsize=256)
def _subdaily_times(
    unit: int,
    k: int,
    phase: int,
    hours: tuple[int, ...] | None,
    minutes: tuple[int, ...] | None,
) -> tuple[int, ...]:
    """Return the seconds of the day of an hourly or minutely rule's occurrences.

    Shared between rules (hence no start second in it): for intervals dividing the
    day, one entry serves every day of every rule with the same shape.

    Args:
        unit: 24 for hourly, 1440 for minutely rules.
        k: The interval, in hours or minutes.
        phase: The first hour or minute of the day on the interval grid.
        hours: The by-hour filter, if any.
        minutes: The by-minute filter (minutely) or expansion (hourly, always set).

    Returns:
        Seconds of the day, ascending.
    """
    if unit == 24:
        return tuple(
            hour * 3600 + minute * 60
            for hour in range(phase, 24, k)
            if hours is None or hour in hours
            for minute in minutes or ()
        )
    return tuple(
        slot * 60
        for slot in range(phase, 1440, k)
        if (hours is None or slot // 60 in hours)
        and (minutes is None or slot % 60 in minutes)
    )


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
        if weekday not in _WEEKDAY:
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
