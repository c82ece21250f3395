# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The Dispatch type: running state and runs, computed without walking history."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule

from frequenz.dispatch import Dispatch

from .helpers import make_dispatch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
MINUTELY = RecurrenceRule(frequency=Frequency.MINUTELY, interval=1)


@pytest.fixture(autouse=True)
def frozen_time() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_wraps_and_compares_equal_to_the_same_client_dispatch() -> None:
    client_dispatch = make_dispatch(1, start_time=NOW)
    assert Dispatch(client_dispatch) == Dispatch(client_dispatch)
    assert Dispatch(Dispatch(client_dispatch)) == Dispatch(client_dispatch)
    assert Dispatch(client_dispatch) != Dispatch(client_dispatch, deleted=True)
    assert Dispatch(client_dispatch).payload is client_dispatch.payload


def test_started_and_until_of_a_one_shot_dispatch() -> None:
    running = Dispatch(make_dispatch(1, start_time=NOW - MINUTE))
    assert running.started and running.until == NOW + 9 * MINUTE
    future = Dispatch(make_dispatch(2, start_time=NOW + MINUTE))
    assert not future.started and future.until is None
    finished = Dispatch(make_dispatch(3, start_time=NOW - 10 * MINUTE))
    assert not finished.started  # the window is [start, start + duration)
    inactive = Dispatch(make_dispatch(4, start_time=NOW - MINUTE, active=False))
    assert not inactive.started
    deleted = Dispatch(make_dispatch(5, start_time=NOW - MINUTE), deleted=True)
    assert not deleted.started


def test_a_dispatch_without_duration_runs_forever_once_started() -> None:
    forever = Dispatch(
        make_dispatch(1, start_time=NOW - 365 * 24 * 60 * MINUTE, duration=None)
    )
    assert forever.started and forever.until is None
    assert forever.next_run is None


def test_zero_duration_never_runs() -> None:
    instant = Dispatch(make_dispatch(1, start_time=NOW, duration=timedelta(0)))
    assert not instant.started


def test_next_run_of_a_year_old_minutely_rule() -> None:
    old = Dispatch(
        make_dispatch(
            1,
            start_time=NOW - timedelta(days=365, seconds=30),
            duration=timedelta(seconds=10),
            recurrence=MINUTELY,
        )
    )
    assert old.next_run == NOW + timedelta(seconds=30)
    assert old.next_run_after(NOW + timedelta(seconds=30)) == NOW + timedelta(
        seconds=30
    )
    assert not old.started


def test_until_of_a_recurring_dispatch_is_the_current_windows_end() -> None:
    hourly = Dispatch(
        make_dispatch(
            1,
            start_time=NOW - timedelta(days=30, minutes=10),
            duration=timedelta(minutes=20),
            recurrence=RecurrenceRule(frequency=Frequency.HOURLY, interval=1),
        )
    )
    assert hourly.started
    assert hourly.until == NOW + 10 * MINUTE


def test_count_ends_the_recurrence() -> None:
    three = Dispatch(
        make_dispatch(
            1,
            start_time=NOW - 10 * MINUTE,
            duration=timedelta(seconds=30),
            recurrence=RecurrenceRule(
                frequency=Frequency.MINUTELY,
                interval=1,
                end_criteria=EndCriteria(count=3),
            ),
        )
    )
    assert three.next_run is None
    assert three.next_run_after(NOW - 10 * MINUTE) == NOW - 10 * MINUTE


def test_missed_runs_terminate_and_yield_each_run_once() -> None:
    dispatch = Dispatch(
        make_dispatch(
            1,
            start_time=NOW - 10 * MINUTE,
            duration=timedelta(seconds=30),
            recurrence=MINUTELY,
        )
    )
    since = NOW - 5 * MINUTE
    missed = list(itertools.islice(dispatch.missed_runs(since), 100))
    assert missed == [since + n * MINUTE for n in range(5)]

    one_shot = Dispatch(make_dispatch(2, start_time=NOW - 5 * MINUTE))
    assert list(itertools.islice(one_shot.missed_runs(NOW - 5 * MINUTE), 10)) == [
        NOW - 5 * MINUTE
    ]
    assert list(one_shot.missed_runs(NOW - 4 * MINUTE)) == []


def test_missed_runs_of_a_year_old_rule_start_at_since() -> None:
    dispatch = Dispatch(
        make_dispatch(
            1,
            start_time=NOW - timedelta(days=365),
            duration=timedelta(seconds=30),
            recurrence=MINUTELY,
        )
    )
    assert list(dispatch.missed_runs(NOW - 2 * MINUTE)) == [
        NOW - 2 * MINUTE,
        NOW - MINUTE,
    ]


def test_a_dispatch_that_cannot_be_scheduled_names_the_problem() -> None:
    naive = Dispatch(make_dispatch(1, start_time=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(ValueError, match=r"dispatch 1: .*start_time"):
        naive.validate()
    negative = Dispatch(make_dispatch(2, start_time=NOW, duration=-MINUTE))
    with pytest.raises(ValueError, match="dispatch 2: duration"):
        negative.validate()
    impossible = Dispatch(
        make_dispatch(
            3,
            start_time=NOW,
            recurrence=RecurrenceRule(
                frequency=Frequency.YEARLY,
                interval=1,
                bymonths=[2],
                bymonthdays=[31],
            ),
        )
    )
    # A rule that never runs is valid, and nothing about it raises.
    impossible.validate()
    assert not impossible.started
    assert impossible.until is None
    assert impossible.next_run is None
    assert impossible.next_run_after(NOW - MINUTE) is None
    assert list(impossible.missed_runs(NOW - 365 * 24 * 60 * MINUTE)) == []
    # One that cannot be read raises in `validate` only (the schedule's check).
    assert not naive.started
    assert naive.until is None
    assert naive.next_run is None
