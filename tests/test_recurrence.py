# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Tests for the recurrence engine, against dateutil's rrule as the oracle."""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from dateutil import rrule as dateutil_rrule
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frequenz.dispatch._recurrence import Occurrences
from frequenz.dispatch._recurrence._day_filter import DayFilter
from frequenz.dispatch._recurrence._times_of_day import TimesOfDay

UTC = timezone.utc
ONE_SECOND = timedelta(seconds=1)
WEEKDAYS = [day for day in Weekday if day != Weekday.UNSPECIFIED]
RECURRING = [freq for freq in Frequency if freq != Frequency.UNSPECIFIED]

QUERY_SPAN = {
    Frequency.MINUTELY: timedelta(days=2),
    Frequency.HOURLY: timedelta(days=40),
    Frequency.DAILY: timedelta(days=700),
    Frequency.WEEKLY: timedelta(days=1500),
    Frequency.MONTHLY: timedelta(days=20 * 365),
    Frequency.YEARLY: timedelta(days=80 * 365),
}
"""How far from the start queries go: far enough to cross months, years and leap
days, near enough for dateutil (which walks from the start) to stay fast."""


def oracle(rule: RecurrenceRule, start: datetime) -> dateutil_rrule.rrule:
    """Return the rrule whose occurrences `Occurrences` must reproduce."""
    with warnings.catch_warnings():
        # count together with until is deprecated in dateutil, but still honoured.
        warnings.simplefilter("ignore", DeprecationWarning)
        return rule._as_rrule(start)


def answers(source: Occurrences | dateutil_rrule.rrule, t: datetime) -> tuple[Any, ...]:
    """Return the four queries' answers, from either implementation."""
    if isinstance(source, Occurrences):
        return (
            source.latest_at_or_before(t),
            source.next_after(t),
            source.next_at_or_after(t),
            list(itertools.islice(source.iter_from(t), 20)),
        )
    return (
        source.before(t, inc=True),
        source.after(t, inc=False),
        source.after(t, inc=True),
        list(itertools.islice(source.xafter(t, inc=True), 20)),
    )


def oracle_is_empty(rule: RecurrenceRule, start: datetime) -> bool:
    """Tell whether dateutil finds no occurrence in a window it can walk quickly."""
    years = 40 if rule.frequency in (Frequency.MONTHLY, Frequency.YEARLY) else 4
    try:
        bounded = oracle(rule, start).replace(
            count=None, until=start + timedelta(days=365 * years)
        )
        return next(iter(bounded), None) is None
    except ValueError:  # dateutil's own "empty rule" errors
        return True


def by_field(values: list[Any], max_size: int) -> st.SearchStrategy[list[Any]]:
    """Mostly empty (defaults from the start), sometimes a few values."""
    return st.one_of(
        st.just([]),
        st.just([]),
        st.lists(st.sampled_from(values), min_size=1, max_size=max_size, unique=True),
    )


@st.composite
def rules(draw: st.DrawFn) -> tuple[RecurrenceRule, datetime]:
    """Draw a valid recurring rule and a start time."""
    frequency = draw(st.sampled_from(RECURRING))
    start = draw(
        st.datetimes(
            min_value=datetime(2018, 1, 1, tzinfo=UTC).replace(tzinfo=None),
            max_value=datetime(2025, 12, 31, tzinfo=UTC).replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    if draw(st.booleans()):
        start = start.replace(microsecond=0)
    rule = RecurrenceRule(
        frequency=frequency,
        interval=draw(st.integers(1, 5)),
        byminutes=draw(by_field(list(range(60)), 3)),
        byhours=draw(by_field(list(range(24)), 3)),
        byweekdays=draw(by_field(WEEKDAYS, 3)),
        bymonthdays=draw(by_field([*range(1, 32), *range(-31, 0)], 2)),
        bymonths=draw(by_field(list(range(1, 13)), 3)),
    )
    match draw(st.sampled_from(["none", "count", "until"])):
        case "count":
            rule.end_criteria = EndCriteria(count=draw(st.integers(1, 60)))
        case "until":
            fraction = draw(st.floats(0, 1))
            rule.end_criteria = EndCriteria(
                until=start + QUERY_SPAN[frequency] * fraction
            )
    return rule, start


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules(),
    st.lists(st.floats(-0.05, 1.0), min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from([timedelta(0), ONE_SECOND, -ONE_SECOND, timedelta(microseconds=1)]),
)
def test_matches_dateutil(
    rule_and_start: tuple[RecurrenceRule, datetime],
    fractions: list[float],
    snap: bool,
    nudge: timedelta,
) -> None:
    """All four queries agree with dateutil, before, at, between and after runs."""
    rule, start = rule_and_start
    occurrences = Occurrences(start, rule)
    if occurrences.is_empty:
        # Self-excluding by-fields, or an end before the first run.
        assert oracle_is_empty(rule, start) or not list(oracle(rule, start))
        for fraction in fractions:
            t = start + QUERY_SPAN[rule.frequency] * fraction
            assert answers(occurrences, t) == (None, None, None, [])
            assert occurrences.count_between(start, t + QUERY_SPAN[rule.frequency]) == 0
        return
    expected = oracle(rule, start)
    for fraction in fractions:
        t = start + QUERY_SPAN[rule.frequency] * fraction
        if snap:  # Query right at an occurrence, or a hair away from it.
            t = (expected.after(t, inc=True) or t) + nudge
        assert answers(occurrences, t) == answers(expected, t), t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules(), st.floats(-0.05, 1.0), st.floats(0.0, 1.0))
def test_count_between_matches_dateutil(
    rule_and_start: tuple[RecurrenceRule, datetime], low: float, width: float
) -> None:
    """Counting the runs in `[a, b)` agrees with walking dateutil's runs."""
    rule, start = rule_and_start
    occurrences = Occurrences(start, rule)
    a = start + QUERY_SPAN[rule.frequency] * low
    b = a + QUERY_SPAN[rule.frequency] * width
    if occurrences.is_empty:
        assert occurrences.count_between(a, b) == 0
        return
    expected = sum(
        1
        for _ in itertools.takewhile(
            lambda t: t < b, oracle(rule, start).xafter(a, inc=True)
        )
    )
    assert occurrences.count_between(a, b) == expected


@pytest.mark.usefixtures("dateutil_never_iterates")
def test_counting_a_long_gap_does_not_walk_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Weekdays at 9:00 and 17:00 over 300 years: counted by whole cycles.
    rule = RecurrenceRule(
        frequency=Frequency.DAILY,
        interval=1,
        byhours=[9, 17],
        byweekdays=[Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY],
    )
    start = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    occurrences = Occurrences(start, rule)
    counter = CallCounter(monkeypatch)
    end = datetime(2321, 3, 4, tzinfo=UTC)
    counted = counter.measure(lambda: occurrences.count_between(start, end))
    assert sum(counted.values()) < 50_000
    # Every week has 6 runs; the days of the week repeat every 400 years, so a
    # direct count is exact for the weeks and walks only the rest.
    weeks, rest = divmod((end - start).days, 7)
    tail = occurrences.count_between(start + timedelta(weeks=weeks), end)
    assert occurrences.count_between(start, end) == 6 * weeks + tail
    assert tail <= 6 and rest < 7


def test_all_datetimes_are_utc() -> None:
    start = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1, byhours=[3])
    occurrences = Occurrences(start, rule)
    t = datetime(2024, 6, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    found = [
        occurrences.latest_at_or_before(t),
        occurrences.next_after(t),
        occurrences.next_at_or_after(t),
        next(occurrences.iter_from(t)),
    ]
    for when in found:
        assert when is not None
        assert when.tzinfo is UTC
    # By-fields are read in UTC, whatever zone the start came in.
    assert answers(occurrences, t) == answers(oracle(rule, start.astimezone(UTC)), t)


def test_minutely_rule_aged_one_year() -> None:
    now = datetime(2026, 3, 11, 10, 17, 23, 512_000, tzinfo=UTC)
    start = datetime(2025, 3, 11, 10, 17, tzinfo=UTC) - timedelta(minutes=3)
    rule = RecurrenceRule(frequency=Frequency.MINUTELY, interval=1)
    occurrences = Occurrences(start, rule)
    on_the_minute = datetime(2026, 3, 11, 10, 17, tzinfo=UTC)
    assert occurrences.latest_at_or_before(now) == on_the_minute
    assert occurrences.next_after(now) == on_the_minute + timedelta(minutes=1)
    assert occurrences.next_at_or_after(now) == on_the_minute + timedelta(minutes=1)
    assert occurrences.next_at_or_after(on_the_minute) == on_the_minute
    assert occurrences.next_after(on_the_minute) == on_the_minute + timedelta(minutes=1)
    # An rrule anchored at a recent occurrence is on the same grid: same answers.
    anchored = oracle(rule, on_the_minute - timedelta(hours=1))
    assert answers(occurrences, now) == answers(anchored, now)


def test_minutely_rule_with_filters_aged_one_year() -> None:
    now = datetime(2026, 3, 11, 10, 17, 23, tzinfo=UTC)  # a Wednesday
    start = datetime(2025, 3, 10, 0, 0, 30, tzinfo=UTC)  # a Monday
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY,
        interval=15,
        byhours=[8, 9, 10],
        byweekdays=[Weekday.MONDAY, Weekday.WEDNESDAY],
    )
    occurrences = Occurrences(start, rule)
    assert occurrences.latest_at_or_before(now) == now.replace(minute=15, second=30)
    assert occurrences.next_at_or_after(now) == now.replace(minute=30, second=30)
    late = now.replace(hour=11)
    assert occurrences.latest_at_or_before(late) == now.replace(minute=45, second=30)
    # Next Monday, as Thursday to Sunday are filtered out.
    assert occurrences.next_after(late) == datetime(2026, 3, 16, 8, 0, 30, tzinfo=UTC)
    anchored = oracle(rule, datetime(2026, 3, 9, 0, 0, 30, tzinfo=UTC))
    for t in (now, late, now - timedelta(days=1)):
        assert answers(occurrences, t) == answers(anchored, t)


def test_count_is_computed_without_walking() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY,
        interval=1,
        end_criteria=EndCriteria(count=100_000),
    )
    occurrences = Occurrences(start, rule)
    last = start + timedelta(minutes=99_999)
    assert occurrences.latest_at_or_before(datetime(2030, 1, 1, tzinfo=UTC)) == last
    assert occurrences.latest_at_or_before(last) == last
    assert occurrences.next_at_or_after(last) == last
    assert occurrences.next_after(last) is None
    assert occurrences.next_after(last - ONE_SECOND) == last
    assert occurrences.next_at_or_after(last + ONE_SECOND) is None
    assert list(occurrences.iter_from(last - timedelta(minutes=2))) == [
        last - timedelta(minutes=2),
        last - timedelta(minutes=1),
        last,
    ]


def test_count_with_filters() -> None:
    """480 runs a day (9:00 to 16:59): run 100000 is run 370 of day 208."""
    start = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY,
        interval=1,
        byhours=list(range(9, 17)),
        end_criteria=EndCriteria(count=100_000),
    )
    occurrences = Occurrences(start, rule)
    # 270 runs on the first afternoon, then 207 full days, then 370 more.
    assert 270 + 207 * 480 + 370 == 100_000
    last = datetime(2024, 7, 27, 9, 0, tzinfo=UTC) + timedelta(minutes=369)
    assert occurrences.latest_at_or_before(datetime(2031, 1, 1, tzinfo=UTC)) == last
    assert occurrences.next_at_or_after(last) == last
    assert occurrences.next_after(last) is None
    assert occurrences.next_after(last - timedelta(minutes=1)) == last


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        (RecurrenceRule(frequency=Frequency.YEARLY, interval=1), 3),
        (
            RecurrenceRule(frequency=Frequency.MONTHLY, interval=1, bymonthdays=[31]),
            500,
        ),
        (
            RecurrenceRule(
                frequency=Frequency.YEARLY, interval=3, bymonths=[2], bymonthdays=[29]
            ),
            45,
        ),
        (
            RecurrenceRule(
                frequency=Frequency.DAILY,
                interval=2,
                bymonths=[1, 6],
                byweekdays=[Weekday.FRIDAY],
            ),
            300,
        ),
        (
            RecurrenceRule(
                frequency=Frequency.HOURLY,
                interval=5,
                bymonthdays=[-1],
                byminutes=[0, 1],
            ),
            2000,
        ),
    ],
)
def test_count_spanning_calendar_cycles(rule: RecurrenceRule, count: int) -> None:
    """Counts that end several centuries out skip whole 400-year cycles."""
    start = datetime(2020, 2, 29, 13, 14, 15, tzinfo=UTC)
    rule.end_criteria = EndCriteria(count=count)
    expected = list(oracle(rule, start))
    assert len(expected) == count
    occurrences = Occurrences(start, rule)
    assert list(occurrences.iter_from(expected[-1] - ONE_SECOND)) == expected[-1:]
    occurrences = Occurrences(start, rule)  # Resolve the count from the far side.
    assert (
        occurrences.latest_at_or_before(datetime(9999, 1, 1, tzinfo=UTC))
        == (expected[-1])
    )
    assert occurrences.next_after(expected[-1]) is None


def test_until_is_inclusive() -> None:
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    for byhours in ([], [8, 20]):
        at_last = EndCriteria(until=datetime(2024, 1, 10, 8, tzinfo=UTC))
        rule = RecurrenceRule(
            frequency=Frequency.DAILY, interval=1, byhours=byhours, end_criteria=at_last
        )
        occurrences = Occurrences(start, rule)
        until = datetime(2024, 1, 10, 8, tzinfo=UTC)
        assert occurrences.next_at_or_after(until) == until
        assert occurrences.latest_at_or_before(until + timedelta(days=9)) == until
        assert occurrences.next_after(until) is None
        rule.end_criteria = EndCriteria(until=until - ONE_SECOND)
        occurrences = Occurrences(start, rule)
        assert occurrences.next_at_or_after(until) is None
        assert occurrences.latest_at_or_before(until) == until - timedelta(
            hours=12 if byhours else 24
        )


def test_count_and_until_together_end_at_the_earlier() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for count, until_day in ((5, 20), (20, 5)):
        rule = RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=1,
            byhours=[0, 12],
            end_criteria=EndCriteria(
                count=count, until=datetime(2024, 1, until_day, tzinfo=UTC)
            ),
        )
        expected = list(oracle(rule, start))
        assert list(Occurrences(start, rule).iter_from(start)) == expected


def test_feb_29_yearly() -> None:
    start = datetime(2020, 2, 29, 6, tzinfo=UTC)
    rule = RecurrenceRule(frequency=Frequency.YEARLY, interval=1)
    occurrences = Occurrences(start, rule)
    assert list(itertools.islice(occurrences.iter_from(start), 3)) == [
        start,
        start.replace(year=2024),
        start.replace(year=2028),
    ]
    # 2100 is not a leap year: eight years between runs.
    t = datetime(2097, 1, 1, tzinfo=UTC)
    assert occurrences.next_after(t) == start.replace(year=2104)
    assert occurrences.latest_at_or_before(t) == start.replace(year=2096)
    assert answers(occurrences, t) == answers(oracle(rule, start), t)


def test_monthly_on_day_31() -> None:
    start = datetime(2024, 1, 31, 9, tzinfo=UTC)
    rule = RecurrenceRule(frequency=Frequency.MONTHLY, interval=1)
    occurrences = Occurrences(start, rule)
    months = [when.month for when in itertools.islice(occurrences.iter_from(start), 7)]
    assert months == [1, 3, 5, 7, 8, 10, 12]
    t = datetime(2031, 6, 15, tzinfo=UTC)
    assert occurrences.latest_at_or_before(t) == datetime(2031, 5, 31, 9, tzinfo=UTC)
    assert occurrences.next_after(t) == datetime(2031, 7, 31, 9, tzinfo=UTC)
    assert answers(occurrences, t) == answers(oracle(rule, start), t)


def test_weekly_interval_2_with_weekdays() -> None:
    start = datetime(2024, 1, 3, 10, tzinfo=UTC)  # a Wednesday
    rule = RecurrenceRule(
        frequency=Frequency.WEEKLY,
        interval=2,
        byweekdays=[Weekday.MONDAY, Weekday.FRIDAY],
    )
    occurrences = Occurrences(start, rule)
    # Monday Jan 1 precedes the start; weeks of Jan 1, Jan 15, Jan 29 run.
    assert list(itertools.islice(occurrences.iter_from(start), 5)) == [
        datetime(2024, 1, 5, 10, tzinfo=UTC),
        datetime(2024, 1, 15, 10, tzinfo=UTC),
        datetime(2024, 1, 19, 10, tzinfo=UTC),
        datetime(2024, 1, 29, 10, tzinfo=UTC),
        datetime(2024, 2, 2, 10, tzinfo=UTC),
    ]
    t = datetime(2027, 7, 7, tzinfo=UTC)
    assert answers(occurrences, t) == answers(oracle(rule, start), t)


def test_single_occurrence() -> None:
    start = datetime(2024, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    unspecified = RecurrenceRule(frequency=Frequency.UNSPECIFIED)
    for rule in (None, unspecified):
        occurrences = Occurrences(start, rule)
        assert occurrences.latest_at_or_before(start) == start
        assert occurrences.latest_at_or_before(start - ONE_SECOND) is None
        assert occurrences.next_at_or_after(start) == start
        assert occurrences.next_after(start) is None
        assert list(occurrences.iter_from(start - ONE_SECOND)) == [start]
        assert list(occurrences.iter_from(start + ONE_SECOND)) == []


def test_finite_rule_iteration_ends() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rule = RecurrenceRule(
        frequency=Frequency.HOURLY,
        interval=7,
        byweekdays=[Weekday.SATURDAY],
        end_criteria=EndCriteria(count=30),
    )
    runs = list(Occurrences(start, rule).iter_from(start))
    assert runs == list(oracle(rule, start))
    assert len(runs) == 30


NAIVE = datetime(2024, 1, 1)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("start", "changes", "field"),
    [
        (NAIVE, {}, "start_time"),
        (None, {"end_criteria": EndCriteria(until=NAIVE)}, "until"),
        (None, {"interval": 0}, "recurrence.interval"),
        (None, {"byweekdays": [Weekday.UNSPECIFIED]}, "recurrence.byweekdays"),
        (None, {"byminutes": [60]}, "recurrence.byminutes"),
        (None, {"byhours": [-1]}, "recurrence.byhours"),
        (None, {"bymonthdays": [0]}, "recurrence.bymonthdays"),
        (None, {"bymonthdays": [32]}, "recurrence.bymonthdays"),
        (None, {"bymonthdays": [-32]}, "recurrence.bymonthdays"),
        (None, {"bymonths": [13]}, "recurrence.bymonths"),
        (None, {"end_criteria": EndCriteria(count=0)}, "recurrence.end_criteria.count"),
    ],
)
def test_invalid_input_names_the_field(
    start: datetime | None, changes: dict[str, Any], field: str
) -> None:
    rule = RecurrenceRule(frequency=Frequency.DAILY, interval=1)
    for name, value in changes.items():
        setattr(rule, name, value)
    with pytest.raises(ValueError, match=field):
        Occurrences(start or datetime(2024, 1, 1, tzinfo=UTC), rule)


def test_negative_monthdays_are_valid() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rule = RecurrenceRule(
        frequency=Frequency.MONTHLY, interval=1, bymonthdays=[-31, -1]
    )
    occurrences = Occurrences(start, rule)
    t = datetime(2024, 2, 10, tzinfo=UTC)
    assert occurrences.next_after(t) == datetime(2024, 2, 29, tzinfo=UTC)
    assert answers(occurrences, t) == answers(oracle(rule, start), t)


def test_naive_query_is_rejected() -> None:
    occurrences = Occurrences(
        datetime(2024, 1, 1, tzinfo=UTC),
        RecurrenceRule(frequency=Frequency.DAILY, interval=1),
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrences.next_after(NAIVE)


def first_five(occurrences: Occurrences, t: datetime) -> list[datetime]:
    return list(itertools.islice(occurrences.iter_from(t), 5))


class CallCounter:
    """Counts calls of the grid's per-day and per-month steps."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        steps: tuple[tuple[type, str], ...] = (
            (DayFilter, "month_skip"),
            (DayFilter, "day_ok"),
            (TimesOfDay, "on"),
        )
        for owner, name in steps:
            original = getattr(owner, name)
            monkeypatch.setattr(owner, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return original(*args, **kwargs)

        return counted

    def measure(self, call: Callable[[], object]) -> dict[str, int]:
        self.calls.clear()
        call()
        return dict(self.calls)


@pytest.fixture
def dateutil_never_iterates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(self: object) -> Iterator[datetime]:
        raise AssertionError("Occurrences must not iterate a dateutil rrule")

    monkeypatch.setattr(dateutil_rrule.rrule, "_iter", refuse)
    yield


@pytest.mark.usefixtures("dateutil_never_iterates")
@pytest.mark.parametrize(
    ("rule", "period"),
    [
        (RecurrenceRule(frequency=Frequency.MINUTELY, interval=1, byhours=[9, 10]), 1),
        (
            RecurrenceRule(
                frequency=Frequency.DAILY,
                interval=1,
                byweekdays=[Weekday.MONDAY, Weekday.THURSDAY],
            ),
            7,
        ),
        (RecurrenceRule(frequency=Frequency.WEEKLY, interval=2), 14),
        (RecurrenceRule(frequency=Frequency.HOURLY, interval=5, byminutes=[7, 9]), 5),
    ],
)
def test_query_work_does_not_depend_on_age(
    monkeypatch: pytest.MonkeyPatch, rule: RecurrenceRule, period: int
) -> None:
    """The same query on an old or a young rule does the same steps."""
    counter = CallCounter(monkeypatch)
    now = datetime(2026, 3, 11, 10, 17, 23, tzinfo=UTC)
    work = []
    # Ages are whole pattern periods, so the query meets the same pattern.
    for age_days in (period, 30 * period, 365 * period, 3650 * period):
        occurrences = Occurrences(now - timedelta(days=age_days), rule)
        work.append(
            (
                counter.measure(partial(occurrences.latest_at_or_before, now)),
                counter.measure(partial(occurrences.next_at_or_after, now)),
                counter.measure(partial(first_five, occurrences, now)),
            )
        )
    assert all(step == work[0] for step in work)
    assert sum(sum(calls.values()) for calls in work[0]) < 100


@pytest.mark.usefixtures("dateutil_never_iterates")
def test_fast_path_does_no_per_day_work(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CallCounter(monkeypatch)
    now = datetime(2026, 3, 11, 10, 17, 23, tzinfo=UTC)
    for age in (timedelta(days=1), timedelta(days=30), timedelta(days=365)):
        occurrences = Occurrences(
            now - age,
            RecurrenceRule(
                frequency=Frequency.MINUTELY,
                interval=1,
                end_criteria=EndCriteria(count=10**9),
            ),
        )
        assert counter.measure(partial(occurrences.next_at_or_after, now)) == {}
        assert counter.measure(partial(occurrences.latest_at_or_before, now)) == {}


@pytest.mark.usefixtures("dateutil_never_iterates")
def test_count_resolution_work_does_not_depend_on_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = CallCounter(monkeypatch)
    start = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    far = datetime(9000, 1, 1, tzinfo=UTC)
    work = []
    for count in (10**4, 10**6, 10**8):
        rule = RecurrenceRule(
            frequency=Frequency.MINUTELY,
            interval=1,
            byhours=[3, 4],
            byweekdays=[Weekday.TUESDAY],
            end_criteria=EndCriteria(count=count),
        )
        occurrences = Occurrences(start, rule)
        work.append(
            sum(counter.measure(partial(occurrences.latest_at_or_before, far)).values())
        )
        if count == 10**4:  # 120 runs a week: run 10000 is run 40 of week 84.
            assert occurrences.latest_at_or_before(far) == datetime(
                2024, 1, 2, 3, tzinfo=UTC
            ) + timedelta(weeks=83, minutes=39)
    # One week is one cycle of this rule: counting never walks more than two.
    assert max(work) < 100


@pytest.mark.parametrize(
    "rule",
    [
        RecurrenceRule(
            frequency=Frequency.MONTHLY, interval=1, bymonthdays=[30], bymonths=[2]
        ),
        RecurrenceRule(
            frequency=Frequency.DAILY, interval=5, bymonthdays=[31], bymonths=[4, 6]
        ),
        # From 2021, every 4th year is never a leap year.
        RecurrenceRule(
            frequency=Frequency.YEARLY, interval=4, bymonthdays=[29], bymonths=[2]
        ),
        # Every 7 days keeps the start's weekday, a Thursday.
        RecurrenceRule(
            frequency=Frequency.DAILY,
            interval=7,
            byweekdays=[Weekday.MONDAY],
            bymonths=[1],
        ),
        RecurrenceRule(frequency=Frequency.MINUTELY, interval=1440, byhours=[1]),
        RecurrenceRule(frequency=Frequency.HOURLY, interval=24, byhours=[1]),
        RecurrenceRule(frequency=Frequency.MONTHLY, interval=12, bymonths=[2]),
    ],
)
def test_impossible_rule_is_detected_quickly(
    monkeypatch: pytest.MonkeyPatch, rule: RecurrenceRule
) -> None:
    counter = CallCounter(monkeypatch)
    start = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)

    def build() -> None:
        occurrences = Occurrences(start, rule)
        assert occurrences.is_empty
        assert occurrences.next_at_or_after(start) is None
        assert occurrences.latest_at_or_before(start + timedelta(days=99)) is None

    # Bounded by one cycle of the rule (at most 400 years of months or 7 * 400
    # years of aligned days), never by walking up to year 9999.
    assert sum(counter.measure(build).values()) < 50_000
