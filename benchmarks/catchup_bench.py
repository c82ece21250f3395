# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Cost of catching up after a gap (a suspend, a blocked loop, a clock jump).

10,000 minutely dispatches with 30-second windows are held by a `Schedule`; the
schedule is then told the time once, a minute later or a week later. Every
dispatch has missed runs either way (each logs one warning line: the log calls
are formatted into a discarded stream, so their cost is counted). The figure
that matters is the ratio: catching up costs O(1) per dispatch, so a week-long
gap (10,080 missed runs each) costs about what a one-minute gap costs. A second
set uses a calendar rule (by-hours and by-weekdays), counted by whole cycles.

Each figure is the best of several rounds, as the machine may be shared. Run with:

    .venv/bin/python benchmarks/catchup_bench.py
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule, Weekday
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds

from frequenz.dispatch import Dispatch
from frequenz.dispatch._schedule import Schedule

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
COUNT = 10_000
ROUNDS = 3
MINUTELY = RecurrenceRule(frequency=Frequency.MINUTELY, interval=1)
CALENDAR = RecurrenceRule(
    frequency=Frequency.MINUTELY,
    interval=1,
    byhours=list(range(6, 22)),
    byweekdays=[Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY],
)


def _dispatches(rule: RecurrenceRule) -> list[Dispatch]:
    return [
        Dispatch(
            ClientDispatch(
                id=DispatchId(n + 1),
                type=f"TYPE_{n % 10}",
                start_time=T0 + timedelta(seconds=n % 60),
                duration=timedelta(seconds=30),
                target=TargetIds(1),
                active=True,
                dry_run=False,
                payload={},
                recurrence=rule,
                create_time=T0,
                update_time=T0,
            )
        )
        for n in range(COUNT)
    ]


def catch_up_seconds(rule: RecurrenceRule, gap: timedelta) -> tuple[float, int]:
    """Return the best time of one `advance` after `gap`, and the missed runs."""
    dispatches = _dispatches(rule)
    best = float("inf")
    missed = 0
    for _ in range(ROUNDS):
        sent: list[Dispatch] = []
        schedule = Schedule(sent.append)
        for dispatch in dispatches:
            schedule.upsert(dispatch, T0)
        started = time.perf_counter()
        schedule.advance(T0 + gap)
        best = min(best, time.perf_counter() - started)
        missed = sum(schedule.missed_runs_by_type().values())
    return best, missed


def main() -> None:
    """Print the catch-up times and their ratio."""
    handler = logging.StreamHandler(io.StringIO())
    logger = logging.getLogger("frequenz.dispatch")
    logger.addHandler(handler)
    logger.propagate = False
    # A minute and ten seconds: every dispatch has a window that closed before
    # the schedule got to it, so both gaps log one line per dispatch.
    short = timedelta(minutes=1, seconds=10)
    week = timedelta(days=7)
    print(f"{COUNT:,} dispatches, 30 s windows, one advance() after the gap")
    print(f"{'rule':<10} {'gap':<10} {'seconds':>9} {'missed runs':>12} {'ratio':>7}")
    for name, rule in (("minutely", MINUTELY), ("calendar", CALENDAR)):
        base, base_missed = catch_up_seconds(rule, short)
        print(f"{name:<10} {'1 min':<10} {base:>9.3f} {base_missed:>12,} {1.0:>7.2f}")
        long, long_missed = catch_up_seconds(rule, week)
        print(
            f"{name:<10} {'1 week':<10} {long:>9.3f} {long_missed:>12,} "
            f"{long / base:>7.2f}"
        )


if __name__ == "__main__":
    main()
