# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Calendar arithmetic and occurrence counting for the recurrence engine.

Times are plain integers here: a day is its proleptic Gregorian ordinal minus one
(day 0 is Monday 0001-01-01), an instant is `day * DAY + second_of_day`. Integer
arithmetic keeps the hot paths free of datetime allocations.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._recurrence import _Grid

DAY = 86_400
"""Seconds in a day (UTC has no DST, and dateutil ignores leap seconds too)."""

MAX_DAY = date.max.toordinal() - 1
"""Day number of 9999-12-31, the last day a `datetime` can represent."""

NEVER = (MAX_DAY + 1) * DAY
"""An instant after every representable one, for ends that are never reached."""

_CUMULATIVE_DAYS = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_MEMO_MAX_PHASES = 64
"""Above this many alignment phases, per-month totals are rarely reused: skip them."""


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


def nth_occurrence(grid: _Grid, n: int) -> int:
    """Return the n-th occurrence of a rule, counting from its start.

    The pattern of occurrences repeats every `grid.cycle_days` days, so only the
    first cycle is ever walked: the count of full cycles is skipped by division.
    The walk goes month by month (memoised per month shape) for dense rules and
    jumps from valid day to valid day for sparse ones.

    Args:
        grid: The rule.
        n: The 1-based index of the wanted occurrence (the `count` end criterion).

    Returns:
        The instant of the n-th occurrence, or `NEVER` if it lies after 9999.
    """
    first_day = grid.start // DAY
    # The walk counts whole days; occurrences earlier on the start day than the
    # start itself are not part of the rule, so they shift the wanted index.
    skipped = 0
    if grid.next_day(first_day, first_day) == first_day:
        skipped = bisect_left(grid.times(first_day), grid.start % DAY - grid.sec)
    wanted = skipped + n - 1
    limit = min(first_day + grid.cycle_days, MAX_DAY + 1)
    per_cycle, found = _walk(grid, first_day, limit, wanted)
    if found is not None:
        return found
    if limit < first_day + grid.cycle_days or per_cycle == 0:
        return NEVER
    cycles, rest = divmod(wanted, per_cycle)
    _, found = _walk(grid, first_day, limit, rest)
    assert found is not None, "a cycle repeats the same occurrences"
    return found + cycles * grid.cycle_days * DAY


def _walk(grid: _Grid, day: int, limit: int, wanted: int) -> tuple[int, int | None]:
    """Count occurrences on the days `[day, limit)` and find the wanted one.

    Args:
        grid: The rule.
        day: The first day to count.
        limit: The day after the last day to count.
        wanted: The 0-based index, from the start of `day`, of the occurrence to find.

    Returns:
        The number of occurrences counted (all of them if `wanted` was not reached)
            and the instant of the wanted occurrence, if reached.
    """
    memo: dict[tuple[int, int, int], int] = {}
    use_memo = grid.phases <= _MEMO_MAX_PHASES
    total = 0
    while day < limit:
        found = grid.next_day(day, limit - 1)
        if found is None:
            break
        when = date.fromordinal(found + 1)
        first = found - when.day + 1
        length = month_len(when.year, when.month)
        if use_memo and first >= day and first + length <= limit:
            key = (length, first % 7, grid.phase(first))
            count = memo.get(key)
            if count is None:
                count = memo[key] = _month_total(grid, first, length)
            if total + count <= wanted:
                total += count
                day = first + length
                continue
        times = grid.times(found)
        if total + len(times) > wanted:
            return total, found * DAY + times[wanted - total] + grid.sec
        total += len(times)
        day = found + 1
    return total, None


def _month_total(grid: _Grid, first: int, length: int) -> int:
    """Count the occurrences in a whole month that the rule allows.

    Args:
        grid: The rule.
        first: Day number of the first day of the month.
        length: Length of the month in days.

    Returns:
        The number of occurrences in the month.
    """
    total = 0
    for monthday in candidates(grid.bmd, length):
        day = first + monthday - 1
        if grid.day_ok(day):
            total += len(grid.times(day))
    return total
