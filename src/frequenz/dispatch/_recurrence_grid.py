# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The day-by-day occurrence grid of a recurrence rule.

Which days of the calendar have runs, at which seconds of the day, and how to
jump to the next or previous such day without walking from the first run. See
`_calendar` for how days and instants are numbered.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from math import gcd, lcm

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule

from ._calendar import (
    DAY,
    GREGORIAN_DAYS,
    WEEKDAY,
    candidates,
    month_first,
    month_len,
)

MEMO_MAX_PHASES = 64
"""Above this many alignment phases, per-month totals are rarely reused: skip them."""


class Grid:  # pylint: disable=too-many-instance-attributes
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
        "plain",
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
        weekdays = {WEEKDAY[weekday] for weekday in rule.byweekdays}
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
        self.plain = False
        hour, minute = second_of_day // 3600, second_of_day // 60 % 60
        if freq in (Frequency.MINUTELY, Frequency.HOURLY):
            self.unit = 1440 if freq == Frequency.MINUTELY else 24
            self.x0 = start // (DAY // self.unit)
            # At most this many grid slots fall on one day; hourly ones expand.
            self.per_day = -(-self.unit // k)
            # Without filters, each day's times are an arithmetic range (by-minutes
            # filter minutely slots, but only add a fixed offset to a lone hourly one).
            self.plain = self.bh is None and self.bm is None
            if freq == Frequency.HOURLY:
                minutes = self.bm = self.bm or (minute,)
                self.per_day *= len(minutes)
                self.plain = self.bh is None and len(minutes) == 1
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
            self.phases = k // gcd(k, 12) if freq == Frequency.MONTHLY else k
            if k > 1:
                self.day_div, self.month_div, self.align = {
                    Frequency.DAILY: (1, 0, day),
                    Frequency.WEEKLY: (7, 0, day // 7),
                    Frequency.MONTHLY: (0, 1, 12 * when.year + when.month - 1),
                    Frequency.YEARLY: (0, 12, when.year),
                }[freq]
        calendar = 7 if self.wd_mask else 1
        if self.month_mask or self.bmd or freq in (Frequency.MONTHLY, Frequency.YEARLY):
            calendar = GREGORIAN_DAYS
        # The pattern repeats once both the interval grid and the calendar do.
        self.cycle_days = {
            Frequency.DAILY: lcm(k, calendar),
            Frequency.WEEKLY: lcm(7 * k, calendar),
            Frequency.MONTHLY: GREGORIAN_DAYS * (lcm(k, 4800) // 4800),
            Frequency.YEARLY: GREGORIAN_DAYS * (lcm(k, 400) // 400),
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

    def year_phase(self, year: int) -> int:
        """Return where a monthly or yearly interval grid stands at a year's start.

        Two years of the same length that start on the same weekday, `phase` and
        year phase have the same number of occurrences.

        Args:
            year: The year.

        Returns:
            The phase, below `phases` distinct values.
        """
        if not self.month_div:
            return 0
        if self.month_div == 12:  # A year is all in or all out of a yearly grid.
            return int((year - self.align) % self.k == 0)
        return (12 * year - self.align) % self.k

    def times(self, day: int) -> Sequence[int]:
        """Return the occurrence times on a day that passes the day filters.

        Args:
            day: The day number.

        Returns:
            Seconds of the day, ascending, without the constant second `sec`.
        """
        if not self.unit:
            return self.times_fixed
        phase = (self.x0 - self.unit * day) % self.k
        if self.plain:
            slot = DAY // self.unit
            offset = self.bm[0] * 60 if self.bm else 0
            return range(phase * slot + offset, DAY, self.k * slot)
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


@lru_cache(maxsize=1024)
def _subdaily_times(
    unit: int,
    k: int,
    phase: int,
    hours: tuple[int, ...] | None,
    minutes: tuple[int, ...] | None,
) -> Sequence[int]:
    """Return the seconds of the day of an hourly or minutely rule's occurrences.

    Shared between rules (hence no start second in it): for intervals dividing the
    day, one entry serves every day of every rule with the same shape. Only rules
    with by-hour or by-minute filters get here; a packed array keeps a full day of
    minutes at under 6 kB, so the whole cache stays within a few megabytes.

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
        return array(
            "i",
            (
                hour * 3600 + minute * 60
                for hour in range(phase, 24, k)
                if hours is None or hour in hours
                for minute in minutes or ()
            ),
        )
    return array(
        "i",
        (
            slot * 60
            for slot in range(phase, 1440, k)
            if (hours is None or slot // 60 in hours)
            and (minutes is None or slot % 60 in minutes)
        ),
    )
