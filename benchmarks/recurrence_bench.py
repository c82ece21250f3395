# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Cost of one occurrence query, against the age of the dispatch.

Prints microseconds per `next_at_or_after(now)` and `latest_at_or_before(now)` of
`Occurrences`, next to dateutil's `_as_rrule(start).after(now, inc=True)`, which
walks from the first occurrence. Each figure is the best of several rounds, as the
machine may be shared. Run with:

    .venv/bin/python benchmarks/recurrence_bench.py
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)

from frequenz.dispatch._recurrence import Occurrences

NOW = datetime(2026, 3, 11, 10, 17, 23, 512_000, tzinfo=timezone.utc)
BUDGET_S = 0.3
"""Wall time spent on each measurement; repetitions adapt to it."""


ROUNDS = 5


def per_call_us(call: Callable[[], object], budget: float = BUDGET_S) -> float:
    """Return the cost of `call` in microseconds: best round of many repetitions."""
    reps = 1
    while True:
        began = time.perf_counter()
        for _ in range(reps):
            call()
        elapsed = time.perf_counter() - began
        if elapsed >= budget / ROUNDS or reps >= 1_000_000:
            break
        reps *= 2 if elapsed > budget / ROUNDS / 10 else 10
    best = elapsed
    for _ in range(ROUNDS - 1):
        began = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, time.perf_counter() - began)
    return best / reps * 1e6


def cases() -> list[tuple[str, datetime, RecurrenceRule]]:
    minutely = RecurrenceRule(frequency=Frequency.MINUTELY, interval=1)
    return [
        ("minutely, 1 day old", NOW - timedelta(days=1), minutely),
        ("minutely, 30 days old", NOW - timedelta(days=30), minutely),
        ("minutely, 1 year old", NOW - timedelta(days=365), minutely),
        (
            "daily Mon-Fri 08:00+17:30, 1 year old",
            NOW - timedelta(days=365),
            RecurrenceRule(
                frequency=Frequency.DAILY,
                interval=1,
                byweekdays=[
                    Weekday.MONDAY,
                    Weekday.TUESDAY,
                    Weekday.WEDNESDAY,
                    Weekday.THURSDAY,
                    Weekday.FRIDAY,
                ],
                byhours=[8, 17],
                byminutes=[0, 30],
            ),
        ),
        (
            "monthly on day 31, 5 years old",
            NOW - timedelta(days=5 * 365),
            RecurrenceRule(frequency=Frequency.MONTHLY, interval=1, bymonthdays=[31]),
        ),
        (
            "minutely 09-17h, count 10^6, 1 year old",
            NOW - timedelta(days=365),
            RecurrenceRule(
                frequency=Frequency.MINUTELY,
                interval=1,
                byhours=list(range(9, 17)),
                end_criteria=EndCriteria(count=1_000_000),
            ),
        ),
        (
            "minutely, count 500000, 1 year old",
            NOW - timedelta(days=365),
            RecurrenceRule(
                frequency=Frequency.MINUTELY,
                interval=1,
                end_criteria=EndCriteria(count=500_000),
            ),
        ),
    ]


def _dateutil_after(rule: RecurrenceRule, start: datetime) -> datetime | None:
    """What a caller without `Occurrences` would do: build the rrule and ask it."""
    return rule._as_rrule(start).after(NOW, inc=True)


def main() -> None:
    print(f"now = {NOW.isoformat()}")
    header = (
        f"{'rule':42} {'next_at_or_after':>17} {'latest_at_or_before':>20}"
        f" {'construct':>10} {'dateutil after':>15}"
    )
    print(header)
    print("-" * len(header))
    for name, start, rule in cases():
        occurrences = Occurrences(start, rule)
        # Warm the lazily resolved count end and the shared pattern caches once, as
        # a long-lived dispatch would have.
        occurrences.next_at_or_after(NOW)
        nxt = per_call_us(functools.partial(occurrences.next_at_or_after, NOW))
        latest = per_call_us(functools.partial(occurrences.latest_at_or_before, NOW))
        build = per_call_us(functools.partial(Occurrences, start, rule))
        oracle_rule = rule._as_rrule(start)
        assert oracle_rule.after(NOW, inc=True) == occurrences.next_at_or_after(NOW)
        assert oracle_rule.before(NOW, inc=True) == occurrences.latest_at_or_before(NOW)
        oracle = per_call_us(functools.partial(_dateutil_after, rule, start), 2.0)
        print(
            f"{name:42} {nxt:14.1f} µs {latest:17.1f} µs {build:7.1f} µs"
            f" {oracle:12.0f} µs"
        )


if __name__ == "__main__":
    main()
