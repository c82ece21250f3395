# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The occurrence pattern of a recurrence rule that needs more than arithmetic.

A `Grid` puts a rule's day filter and times of day together, applies dateutil's
defaults taken from the start, knows after how many days the pattern repeats, and
finds the run nearest to an instant. See `_calendar` for how days and instants
are numbered.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date
from math import gcd, lcm

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule

from ._calendar import DAY, GREGORIAN_DAYS, WEEKDAY
from ._day_filter import DayFilter
from ._times_of_day import TimesOfDay

# Read once: accessing an Enum member through its class is slow in Python 3.11,
# and a Grid is built for every version of every recurring dispatch.
_DAILY, _WEEKLY = Frequency.DAILY, Frequency.WEEKLY
_MONTHLY, _YEARLY = Frequency.MONTHLY, Frequency.YEARLY


class Grid:
    """The unbounded occurrence pattern of a rule, navigated a day at a time.

    A day has runs when `days` lets it through; `times` gives them as seconds of
    the day, without the rule's constant second of the minute.
    """

    __slots__ = ("cycle_days", "days", "phases", "start", "times")

    def __init__(self, rule: RecurrenceRule, start: int) -> None:
        """Prepare the pattern of a rule.

        Args:
            rule: The recurrence rule (already checked to be valid).
            start: The rule's first instant, in seconds.
        """
        when = date.fromordinal((start // DAY) + 1)
        frequency, interval = rule.frequency, rule.interval
        months, monthdays = set(rule.bymonths), set(rule.bymonthdays)
        weekdays = {WEEKDAY[weekday] for weekday in rule.byweekdays}
        if not monthdays and not weekdays:  # dateutil's defaults from dtstart
            if frequency == _YEARLY:
                months = months or {when.month}
                monthdays = {when.day}
            elif frequency == _MONTHLY:
                monthdays = {when.day}
            elif frequency == _WEEKLY:
                weekdays = {when.weekday()}

        self.start = start
        """The rule's first instant, in seconds."""

        self.times = TimesOfDay(
            frequency, interval, start, rule.byhours, rule.byminutes
        )
        """At which seconds of the day the rule runs."""

        self.days = DayFilter(
            frequency,
            interval,
            start=when,
            months=months,
            monthdays=monthdays,
            weekdays=weekdays,
            times=self.times,
        )
        """On which days the rule runs."""

        self.phases = interval
        """How many distinct positions the interval grid takes relative to the
        calendar (months for monthly rules, days for hourly and minutely ones)."""
        if self.times.slots_per_day:
            self.phases = interval // gcd(interval, self.times.slots_per_day)
        elif frequency == _MONTHLY:
            self.phases = interval // gcd(interval, 12)

        calendar = 7 if self.days.weekday_bits else 1
        if (
            self.days.month_bits
            or self.days.monthdays
            or frequency in (_MONTHLY, _YEARLY)
        ):
            calendar = GREGORIAN_DAYS
        # The pattern repeats once both the interval grid and the calendar do.
        if frequency == _DAILY:
            cycle = lcm(interval, calendar)
        elif frequency == _WEEKLY:
            cycle = lcm(7 * interval, calendar)
        elif frequency == _MONTHLY:  # 4800 months are 400 years
            cycle = GREGORIAN_DAYS * (lcm(interval, 4800) // 4800)
        elif frequency == _YEARLY:
            cycle = GREGORIAN_DAYS * (lcm(interval, 400) // 400)
        else:
            cycle = lcm(self.phases, calendar)
        self.cycle_days = cycle
        """After how many days the pattern of runs repeats itself."""

    def first_at_or_after(self, at: int, stop: int) -> int | None:
        """Return the first run at or after an instant, on days up to `stop`.

        Args:
            at: The instant, in seconds.
            stop: The last day number to search.

        Returns:
            The run's instant, in seconds, or None if there is none.
        """
        second = self.times.second
        day, second_of_day = divmod(at, DAY)
        found = self.days.next_day(day, stop)
        if found == day:
            times = self.times.on(day)
            index = bisect_left(times, second_of_day - second)
            if index < len(times):
                return (day * DAY) + times[index] + second
            found = self.days.next_day(day + 1, stop)
        if found is None:
            return None
        return (found * DAY) + self.times.on(found)[0] + second

    def last_at_or_before(self, at: int, stop: int) -> int | None:
        """Return the last run at or before an instant, on days from `stop`.

        Args:
            at: The instant, in seconds.
            stop: The first day number to search.

        Returns:
            The run's instant, in seconds, or None if there is none.
        """
        second = self.times.second
        day, second_of_day = divmod(at, DAY)
        found = self.days.prev_day(day, stop)
        if found == day:
            times = self.times.on(day)
            index = bisect_right(times, second_of_day - second)
            if index:
                return (day * DAY) + times[index - 1] + second
            found = self.days.prev_day(day - 1, stop)
        if found is None:
            return None
        return (found * DAY) + self.times.on(found)[-1] + second
