# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Which days of the calendar a recurrence rule runs on.

A day runs when its month passes the by-month filter and the interval grid of a
monthly or yearly rule, its day of the month passes the by-monthday filter, and
it passes the by-weekday filter and the interval grid of a daily or weekly rule
(or, for hourly and minutely rules, holds a slot that passes the time filters).
The search jumps over months and interval periods that cannot match, so it never
walks from the rule's first run. See `_calendar` for how days are numbered.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Set
from datetime import date

from frequenz.client.dispatch.recurrence import Frequency

from ._calendar import candidates, month_first, month_len
from ._times_of_day import TimesOfDay


class DayFilter:
    """The days a rule runs on, searched forward or backward from any day."""

    __slots__ = (
        "first_period",
        "interval",
        "month_bits",
        "monthdays",
        "period_days",
        "period_months",
        "slots_skip_days",
        "subdaily",
        "times",
        "weekday_bits",
    )

    def __init__(
        self,
        frequency: Frequency,
        interval: int,
        *,
        start: date,
        months: Set[int],
        monthdays: Set[int],
        weekdays: Set[int],
        times: TimesOfDay,
    ) -> None:
        """Prepare the day filter of a rule.

        Args:
            frequency: The rule's frequency.
            interval: The rule's interval, at least 1.
            start: The day of the rule's first instant.
            months: The months (1 to 12) to run in; empty for all.
            monthdays: The days of the month to run on (negative ones count from
                the month's end); empty for all.
            weekdays: The weekdays (Python's numbers) to run on; empty for all.
            times: The rule's times of day, which decide whether a day of an
                hourly or minutely rule has runs.
        """
        self.interval = interval
        """The rule's interval, in units of its frequency."""

        self.times = times
        """The rule's times of day."""

        self.month_bits = sum(1 << month for month in months)
        """Bit `m` is set for each month `m` of the by-month filter; 0 for none."""

        self.weekday_bits = sum(1 << weekday for weekday in weekdays)
        """Bit `w` is set for each weekday `w` (`day % 7`) of the by-weekday filter;
        0 for none."""

        self.monthdays = tuple(sorted(monthdays)) or None
        """The by-monthday filter, ascending, or None for none."""

        self.period_days = 0
        """Length in days of a daily (1) or weekly (7) rule's interval period, when
        the interval skips periods; else 0."""

        self.period_months = 0
        """Length in months of a monthly (1) or yearly (12) rule's interval period,
        when the interval skips periods; else 0."""

        self.first_period = 0
        """The start's period (day, week, month or year number) on that interval
        grid, when `period_days` or `period_months` is set."""

        self.subdaily = bool(times.slots_per_day)
        """Whether the rule is hourly or minutely: a day runs if any slot does."""

        self.slots_skip_days = self.subdaily and interval > times.slots_per_day
        """Whether an hourly or minutely interval is longer than a day, so that
        some days hold no slot of the grid at all."""

        if interval > 1 and not self.subdaily:
            self.period_days, self.period_months, self.first_period = {
                Frequency.DAILY: (1, 0, start.toordinal() - 1),
                Frequency.WEEKLY: (7, 0, (start.toordinal() - 1) // 7),
                Frequency.MONTHLY: (0, 1, (12 * start.year) + start.month - 1),
                Frequency.YEARLY: (0, 12, start.year),
            }[frequency]

    def phase(self, first: int) -> int:
        """Return where the interval grid stands on a day, relative to the start.

        Two months of the same length that start on the same weekday and phase
        have the same number of runs.

        Args:
            first: The day number.

        Returns:
            The phase, below the rule's number of distinct phases.
        """
        if self.subdaily:
            return self.times.first_slot(first)
        if self.period_days:
            return ((first // self.period_days) - self.first_period) % self.interval
        return 0

    def year_phase(self, year: int) -> int:
        """Return where a monthly or yearly interval grid stands at a year's start.

        Two years of the same length that start on the same weekday, `phase` and
        year phase have the same number of runs.

        Args:
            year: The year.

        Returns:
            The phase, below the rule's number of distinct phases.
        """
        if not self.period_months:
            return 0
        if self.period_months == 12:  # A year is all in or all out of a yearly grid.
            return int((year - self.first_period) % self.interval == 0)
        return ((12 * year) - self.first_period) % self.interval

    def day_ok(self, day: int) -> bool:
        """Tell whether a day of an allowed month and monthday has runs.

        Args:
            day: The day number.

        Returns:
            Whether weekday, interval grid and time filters all let it through.
        """
        if self.weekday_bits and not ((self.weekday_bits >> (day % 7)) & 1):
            return False
        if self.period_days:
            return ((day // self.period_days) - self.first_period) % self.interval == 0
        return not self.subdaily or bool(self.times.on(day))

    def month_skip(self, year: int, month: int, forward: bool) -> int:
        """Return how many months to move to reach one that can have runs.

        Args:
            year: The year.
            month: The month.
            forward: Whether to move forward (else backward) in time.

        Returns:
            0 if the month itself can have runs.
        """
        index = (12 * year) + month - 1
        if self.period_months:
            period = index // self.period_months
            off = (period - self.first_period) % self.interval
            if off and forward:
                return ((period + self.interval - off) * self.period_months) - index
            if off:
                return index - ((period - off + 1) * self.period_months) + 1
        if self.month_bits and not ((self.month_bits >> month) & 1):
            step = 1 if forward else -1
            for skip in range(1, 12):
                other = ((month - 1 + (skip * step)) % 12) + 1
                if (self.month_bits >> other) & 1:
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
        if self.period_days:
            period = day // self.period_days
            off = (period - self.first_period) % self.interval
            if not off:
                return day
            if forward:
                return (period + self.interval - off) * self.period_days
            return ((period - off + 1) * self.period_days) - 1
        if self.slots_skip_days:
            return self.times.slot_day(day, forward)
        return day

    def next_day(self, day: int, stop: int) -> int | None:
        """Return the first day in `[day, stop]` that has runs.

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
            days = candidates(self.monthdays, month_len(when.year, when.month))
            for monthday in days[bisect_left(days, when.day) :]:
                found = first + monthday - 1
                if found > stop:
                    return None
                if self.day_ok(found):
                    return found
            day = first + month_len(when.year, when.month)
        return None

    def prev_day(self, day: int, stop: int) -> int | None:
        """Return the last day in `[stop, day]` that has runs.

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
            days = candidates(self.monthdays, month_len(when.year, when.month))
            for monthday in reversed(days[: bisect_right(days, when.day)]):
                found = first + monthday - 1
                if found < stop:
                    return None
                if self.day_ok(found):
                    return found
            day = first - 1
        return None
