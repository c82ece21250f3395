# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Counting occurrences on a grid, for rules that end after a number of runs.

The grid's pattern repeats every cycle (the least common multiple of the interval
with 1, 7 or 146097 days), so the n-th run is found by counting at most a couple
of cycles and skipping the rest by division, never by walking every run.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date

from ._calendar import DAY, MAX_DAY, NEVER, candidates, is_leap, month_first, month_len
from ._grid import Grid

MEMO_MAX_PHASES = 64
"""Above this many alignment phases, per-month totals are rarely reused: skip them."""


def nth_occurrence(grid: Grid, n: int) -> int:
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
    if first_day + ((n - 1) // grid.times.max_per_day) > MAX_DAY:
        return NEVER
    # The walk counts whole days; occurrences earlier on the start day than the
    # start itself are not part of the rule, so they shift the wanted index.
    skipped = 0
    if grid.days.next_day(first_day, first_day) == first_day:
        second_of_day = (grid.start % DAY) - grid.times.second
        skipped = bisect_left(grid.times.on(first_day), second_of_day)
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


def count_from_to(grid: Grid, first: int, last: int) -> int:
    """Count the occurrences from one occurrence to another, both included.

    The pattern repeats every `grid.cycle_days` days from any day, so whole
    cycles are counted by division: at most two cycles are ever walked.

    Args:
        grid: The rule.
        first: An occurrence (instant in whole seconds).
        last: A later occurrence, or `first`.

    Returns:
        The number of occurrences in `[first, last]`.
    """
    first_day, last_day = first // DAY, last // DAY
    span = last_day + 1 - first_day
    cycles, rest = divmod(span, grid.cycle_days)
    total = 0
    if cycles:
        per_cycle, _ = _walk(grid, first_day, first_day + grid.cycle_days, _ALL)
        total = cycles * per_cycle
    day = first_day + cycles * grid.cycle_days
    total += _walk(grid, day, day + rest, _ALL)[0]
    # The walk counted whole days: drop the runs before `first` on its day and
    # after `last` on its day.
    offset = grid.times.second
    total -= bisect_left(grid.times.on(first_day), first % DAY - offset)
    times_last = grid.times.on(last_day)
    total -= len(times_last) - bisect_right(times_last, last % DAY - offset)
    return total


_ALL = 1 << 62
"""A `wanted` index no walk reaches: count everything."""


def _walk(grid: Grid, day: int, limit: int, wanted: int) -> tuple[int, int | None]:
    """Count occurrences on the days `[day, limit)` and find the wanted one.

    Whole years and months are counted from memoised totals, which repeat because
    a year's total only depends on its length, weekdays and grid phases. Grids with
    many phases are sparse instead, and walked from valid day to valid day.

    Args:
        grid: The rule.
        day: The first day to count.
        limit: The day after the last day to count.
        wanted: The 0-based index, from the start of `day`, of the occurrence to find.

    Returns:
        The number of occurrences counted (all of them if `wanted` was not reached)
            and the instant of the wanted occurrence, if reached.
    """
    if grid.phases > MEMO_MAX_PHASES:
        return _walk_days(grid, day, limit - 1, 0, wanted)
    memo: dict[tuple[int, ...], int] = {}
    total = 0
    while day < limit:
        when = date.fromordinal(day + 1)
        year, month = when.year, when.month
        length = 365 + is_leap(year)
        if month == 1 and when.day == 1 and day + length <= limit:
            key = (length, day % 7, grid.days.phase(day), grid.days.year_phase(year))
            count = memo.get(key)
            if count is None:
                count = memo[key] = sum(
                    _month_count(grid, memo, year, month, month_first(year, month))
                    for month in range(1, 13)
                )
            if total + count <= wanted:
                total += count
                day += length
                continue
        end = min(day - when.day + 1 + month_len(year, month), limit)
        if when.day == 1 and end - day == month_len(year, month):
            count = _month_count(grid, memo, year, month, day)
            if total + count <= wanted:
                total += count
                day = end
                continue
        total, found = _walk_days(grid, day, end - 1, total, wanted)
        if found is not None:
            return total, found
        day = end
    return total, None


def _month_count(
    grid: Grid, memo: dict[tuple[int, ...], int], year: int, month: int, first: int
) -> int:
    """Return the number of occurrences in a whole month, memoised by its shape.

    Args:
        grid: The rule.
        memo: Month totals by length, weekday of the first and phase.
        year: The year.
        month: The month.
        first: Day number of the first of the month.

    Returns:
        The number of occurrences in the month.
    """
    if grid.days.month_skip(year, month, True):
        return 0
    length = month_len(year, month)
    key = (length, first % 7, grid.days.phase(first))
    count = memo.get(key)
    if count is None:
        count = memo[key] = _month_total(grid, first, length)
    return count


def _walk_days(
    grid: Grid, day: int, stop: int, total: int, wanted: int
) -> tuple[int, int | None]:
    """Count on, valid day by valid day, over `[day, stop]`; see `_walk`.

    Args:
        grid: The rule.
        day: The first day to count.
        stop: The last day to count.
        total: Occurrences counted before `day`.
        wanted: The 0-based index of the occurrence to find.

    Returns:
        The updated count and the instant of the wanted occurrence, if reached.
    """
    while (found := grid.days.next_day(day, stop)) is not None:
        times = grid.times.on(found)
        if total + len(times) > wanted:
            return total, (found * DAY) + times[wanted - total] + grid.times.second
        total += len(times)
        day = found + 1
    return total, None


def _month_total(grid: Grid, first: int, length: int) -> int:
    """Count the occurrences in a whole month that the rule allows.

    Args:
        grid: The rule.
        first: Day number of the first day of the month.
        length: Length of the month in days.

    Returns:
        The number of occurrences in the month.
    """
    total = 0
    for monthday in candidates(grid.days.monthdays, length):
        day = first + monthday - 1
        if grid.days.day_ok(day):
            total += len(grid.times.on(day))
    return total
