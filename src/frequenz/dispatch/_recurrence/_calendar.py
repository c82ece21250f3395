# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Integer calendar arithmetic for the recurrence engine.

A day is its proleptic Gregorian ordinal minus one (day 0 is Monday 0001-01-01,
so `day % 7` is Python's weekday), and an instant is `day * DAY + second_of_day`.
Integer arithmetic keeps the recurrence hot paths free of datetime allocations.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from frequenz.client.dispatch.recurrence import Weekday

DAY = 86_400
"""Seconds in a day (UTC has no DST, and dateutil ignores leap seconds too)."""

MAX_DAY = date.max.toordinal() - 1
"""Day number of 9999-12-31, the last day a `datetime` can represent."""

NEVER = (MAX_DAY + 1) * DAY
"""An instant after every representable one, for ends that are never reached."""

_CUMULATIVE_DAYS = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

GREGORIAN_DAYS = 146_097
"""Days in 400 Gregorian years, after which dates fall on the same weekdays again."""

WEEKDAY = {
    Weekday.MONDAY: 0,
    Weekday.TUESDAY: 1,
    Weekday.WEDNESDAY: 2,
    Weekday.THURSDAY: 3,
    Weekday.FRIDAY: 4,
    Weekday.SATURDAY: 5,
    Weekday.SUNDAY: 6,
}
"""Python's weekday numbers, which are also `day % 7` for our day numbers."""


def is_leap(year: int) -> bool:
    """Tell whether a year is a Gregorian leap year.

    Args:
        year: The year.

    Returns:
        Whether February of that year has 29 days.
    """
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def month_len(year: int, month: int) -> int:
    """Return the number of days of a month.

    Args:
        year: The year.
        month: The month, 1 to 12.

    Returns:
        The length of the month in days.
    """
    return 29 if month == 2 and is_leap(year) else _MONTH_DAYS[month]


def month_first(year: int, month: int) -> int:
    """Return the day number of the first day of a month.

    Pure arithmetic rather than `date()`, so that months outside the range of
    `date` (reached when skipping ahead) still compare correctly against limits.

    Args:
        year: The year.
        month: The month; values outside 1..12 roll over into adjacent years.

    Returns:
        The day number of the first of that month.
    """
    year, month = divmod(12 * year + month - 1, 12)
    month += 1
    past = year - 1
    days = past * 365 + past // 4 - past // 100 + past // 400
    return days + _CUMULATIVE_DAYS[month] + (month > 2 and is_leap(year))


@lru_cache(maxsize=1024)
def candidates(monthdays: tuple[int, ...] | None, length: int) -> tuple[int, ...]:
    """Return the days of a month that a by-monthday filter lets through.

    Args:
        monthdays: The filter (negative values count from the month's end, as in
            dateutil), or None for no filter.
        length: The month's length in days.

    Returns:
        The matching days of the month, ascending.
    """
    if monthdays is None:
        return tuple(range(1, length + 1))
    resolved = {day if day > 0 else length + 1 + day for day in monthdays}
    return tuple(sorted(day for day in resolved if 1 <= day <= length))
