# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Running-state events that stay true in the field (issue 8), on the fake clock.

Each numbered case of the contract is driven through the public API: the fake
service's stream, the scheduler's receivers, `ActorDispatcher`, and the test
kit's clock, whose `jump` moves the wall clock alone (a suspend, an NTP step).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from frequenz.api.dispatch.v1.dispatch_pb2 import StreamMicrogridDispatchesResponse
from frequenz.channels import Receiver
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.sdk.actor import Actor
from typing_extensions import override

from frequenz.dispatch import (
    ActorDispatcher,
    Created,
    Dispatch,
    DispatchInfo,
    MergeByType,
)
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._schedule import ON_TIME_TOLERANCE, Schedule
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .fake_service import ControllableClient
from .helpers import MICROGRID, create, delete, drain, make_dispatch, update

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
MINUTELY = RecurrenceRule(frequency=Frequency.MINUTELY, interval=1)

NEVER_ON_A_SATURDAY = RecurrenceRule(
    frequency=Frequency.DAILY, interval=56, byweekdays=[Weekday.SATURDAY]
)
"""Every 56 days (8 weeks) from a Thursday: always a Thursday, never a Saturday."""

FEBRUARY_31 = RecurrenceRule(
    frequency=Frequency.YEARLY, interval=1, bymonths=[2], bymonthdays=[31]
)


MS = timedelta(milliseconds=1)


def states(messages: list[Dispatch]) -> list[tuple[int, bool, datetime | None]]:
    """Return (id, started, until) of each message."""
    return [(int(m.id), m.started, m.until) for m in messages]


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """Return the WARNING-or-worse log messages containing `text`."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# 1. Events describe the present


async def test_a_jump_forward_misses_closed_windows_and_starts_the_open_one_late(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(
        client, start_time=START + MINUTE, duration=45 * SECOND, recurrence=MINUTELY
    )
    await settle()
    # The laptop sleeps for an hour: the wall clock leaps, the loop's does not.
    # The timer wakes when its one-minute wait is over, at 13:01:20 wall time.
    clock.jump(HOUR + 20 * SECOND)
    await clock.advance(MINUTE)
    messages = drain(receiver)
    # Not 120 messages for windows long gone: one start, with its true `until`.
    assert states(messages) == [
        (int(created.id), True, START + 61 * MINUTE + 45 * SECOND)
    ]
    [record] = warnings_about(caplog, "Missed")
    [line] = [t for t in record.splitlines() if f"dispatch {int(created.id)} " in t]
    assert "60 run(s) missed" in line
    assert "12:01:00" in line and "13:00:00" in line
    assert scheduler._schedule.missed_runs_by_type() == {"TEST": 60}
    assert dict(scheduler.status.missed_runs) == {"TEST": 60}
    # `missed_runs` still yields them (and the late-started one).
    runs = list(Dispatch(created).missed_runs(START))
    assert runs == [START + n * MINUTE for n in range(1, 62)]
    # The late-started window ends on time, and the next one starts on time.
    await clock.advance_to(START + 62 * MINUTE + MS)
    assert states(drain(receiver)) == [
        (int(created.id), False, None),
        (int(created.id), True, START + 62 * MINUTE + 45 * SECOND),
    ]


async def test_a_catch_up_logs_once_per_dispatch_and_counts_per_type(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    for _ in range(3):
        await create(
            client, start_time=START + MINUTE, duration=10 * SECOND, recurrence=MINUTELY
        )
    await create(client, type="OTHER", start_time=START + MINUTE, duration=10 * SECOND)
    await settle()
    clock.jump(timedelta(days=7) - MINUTE)
    # The timer wakes a minute later, at 12:00 a week on, and catches up.
    await clock.advance(MINUTE - MS)
    assert drain(receiver) == []
    # One record for the catch-up, one line in it per dispatch.
    [record] = warnings_about(caplog, "Missed")
    assert len([t for t in record.splitlines() if "run(s) missed" in t]) == 4
    week = 7 * 24 * 60
    assert scheduler._schedule.missed_runs_by_type() == {
        "TEST": 3 * (week - 1),
        "OTHER": 1,
    }
    # The next runs are on time again.
    await clock.advance(2 * MS)
    assert [m.started for m in drain(receiver)] == [True, True, True]


async def test_a_clock_set_back_stops_what_does_not_run_then(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(client, start_time=START + MINUTE, duration=10 * MINUTE)
    await clock.advance(5 * MINUTE)
    assert states(drain(receiver)) == [(int(created.id), True, START + 11 * MINUTE)]
    # Set back to 11:55: the dispatch does not run then. The library sees it at
    # the next thing it does (here a stream event for another dispatch).
    clock.jump(-10 * MINUTE)
    await create(client, type="OTHER", start_time=START + HOUR)
    await settle()
    assert states(drain(receiver)) == [(int(created.id), False, None)]
    # When the clock gets there again, it runs again, and ends on time.
    await clock.advance_to(START + MINUTE + MS)
    assert states(drain(receiver)) == [(int(created.id), True, START + 11 * MINUTE)]
    await clock.advance_to(START + 11 * MINUTE + MS)
    assert states(drain(receiver)) == [(int(created.id), False, None)]


def test_where_late_ends_and_missed_begins() -> None:
    """Pure schedule, explicit instants: the tolerance is the boundary."""
    sent: list[tuple[bool, datetime | None]] = []
    schedule = Schedule(lambda m: sent.append((m.started, m.until)))
    at = START + MINUTE
    switch = Dispatch(make_dispatch(1, start_time=at, duration=timedelta(0)))
    short = Dispatch(make_dispatch(2, start_time=at, duration=SECOND / 2, type="B"))
    schedule.upsert(switch, START)
    schedule.upsert(short, START)
    # The timer's usual lateness, and up to the tolerance: on time.
    schedule.advance(at + ON_TIME_TOLERANCE)
    assert sent == [(True, at), (False, None), (True, at + SECOND / 2), (False, None)]
    assert schedule.missed_runs_by_type() == {}

    sent.clear()
    later = START + 2 * MINUTE
    schedule.upsert(
        Dispatch(make_dispatch(3, start_time=later, duration=timedelta(0))),
        at + ON_TIME_TOLERANCE,
    )
    schedule.advance(later + ON_TIME_TOLERANCE + timedelta(microseconds=1))
    assert sent == []
    assert schedule.missed_runs_by_type() == {"TEST": 1}


# 2. Switch dispatches


async def test_a_zero_duration_dispatch_sends_a_start_then_a_stop(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    at = START + MINUTE
    created = await create(client, start_time=at, duration=timedelta(0))
    await clock.advance(MINUTE)
    messages = drain(receiver)
    assert states(messages) == [
        (int(created.id), True, at),
        (int(created.id), False, None),
    ]
    assert clock.now() == at


async def test_a_switch_created_for_now_switches_now(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(client, start_time="NOW", duration=timedelta(0))
    await settle()
    assert states(drain(receiver)) == [
        (int(created.id), True, created.start_time),
        (int(created.id), False, None),
    ]
    # A later change of its payload does not switch again.
    await update(client, created.id, payload={"v": 1})
    await settle()
    assert drain(receiver) == []


async def test_a_recurring_switch_switches_once_per_occurrence(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    rule = RecurrenceRule(
        frequency=Frequency.MINUTELY, interval=1, end_criteria=EndCriteria(count=3)
    )
    created = await create(
        client, start_time=START + MINUTE, duration=timedelta(0), recurrence=rule
    )
    await clock.advance(10 * MINUTE)
    expected = []
    for n in (1, 2, 3):
        expected += [
            (int(created.id), True, START + n * MINUTE),
            (int(created.id), False, None),
        ]
    assert states(drain(receiver)) == expected


async def test_switches_in_a_catch_up_are_missed_runs(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await create(
        client, start_time=START + MINUTE, duration=timedelta(0), recurrence=MINUTELY
    )
    await settle()
    clock.jump(HOUR)
    await clock.advance(MINUTE + MS)  # the timer wakes at 13:01:00 wall time
    messages = drain(receiver)
    # 12:01 .. 13:00 are missed; 13:01 is reached on time and switches.
    assert [m.started for m in messages] == [True, False]
    assert scheduler._schedule.missed_runs_by_type() == {"TEST": 60}


class _Recorder(Actor):
    """An actor that records what happened to it."""

    log: ClassVar[list[str]] = []

    def __init__(self, info: DispatchInfo, updates: Receiver[DispatchInfo]) -> None:
        super().__init__(name=f"recorder-{info.options.get('n')}")
        self._info = info
        self._updates = updates
        _Recorder.log.append(f"created {info.options.get('n')}")

    @override
    async def _run(self) -> None:
        async for _ in self._updates:
            pass

    @override
    async def stop(self, msg: str | None = None) -> None:
        _Recorder.log.append(f"stopped {self._info.options.get('n')}")
        await super().stop(msg)


async def _make_recorder(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
    return _Recorder(info, updates)


async def test_an_actor_dispatcher_sees_a_switch(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    _Recorder.log = []
    receiver = scheduler.new_running_state_event_receiver("TEST")
    async with ActorDispatcher(_make_recorder, receiver):
        await create(
            client,
            start_time=START + MINUTE,
            duration=timedelta(0),
            payload={"n": "one"},
        )
        await clock.advance(MINUTE)
        await settle()
        assert _Recorder.log == ["created one", "stopped one"]


# 4. Rules that never occur


@pytest.mark.parametrize("rule", [NEVER_ON_A_SATURDAY, FEBRUARY_31])
async def test_a_rule_that_never_occurs_is_a_valid_dispatch(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    rule: RecurrenceRule,
    caplog: pytest.LogCaptureFixture,
) -> None:
    thursday = START + timedelta(days=3)
    assert thursday.weekday() == 3
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(client, start_time=thursday, recurrence=rule)
    await settle()
    [event] = drain(lifecycle)
    assert isinstance(event, Created)
    dispatch = event.dispatch
    assert not dispatch.started
    assert dispatch.until is None
    assert dispatch.next_run is None
    assert dispatch.next_run_after(START) is None
    await clock.advance(timedelta(days=400))
    assert list(dispatch.missed_runs(START)) == []
    assert drain(receiver) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await delete(client, created.id)
    await settle()
    assert [type(e).__name__ for e in drain(lifecycle)] == ["Deleted"]


async def test_an_update_to_a_rule_that_never_occurs_stops_the_running_version(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    receiver = scheduler.new_running_state_event_receiver("TEST")
    thursday = START + timedelta(days=3)
    assert thursday.weekday() == 3
    created = await create(
        client, start_time=thursday, duration=HOUR, recurrence=MINUTELY
    )
    await clock.advance_to(thursday + MS)
    assert [m.started for m in drain(receiver)] == [True]
    # Read now: pending lifecycle events of one dispatch coalesce.
    assert [type(e).__name__ for e in drain(lifecycle)] == ["Created"]
    await update(
        client,
        created.id,
        **{
            "recurrence.frequency": Frequency.DAILY,
            "recurrence.interval": 56,
            "recurrence.byweekdays": [Weekday.SATURDAY],
        },
    )
    await settle()
    events = drain(lifecycle)
    assert [type(e).__name__ for e in events] == ["Updated"]
    assert events[0].dispatch.recurrence.byweekdays == [Weekday.SATURDAY]
    [stop] = drain(receiver)
    assert not stop.started
    assert stop.next_run is None
    await clock.advance(timedelta(days=120))
    assert drain(receiver) == []


# 5. Fail safe on unreadable versions


def _unreadable(dispatch: Any, **changes: Any) -> Any:
    """The protobuf of a newer version whose payload the client cannot decode."""
    pb_dispatch = make_dispatch(
        int(dispatch.id),
        start_time=dispatch.start_time,
        duration=dispatch.duration,
        update_time=dispatch.update_time + SECOND,
        **changes,
    ).to_protobuf()
    pb_dispatch.data.payload.update({"x": math.nan})
    return pb_dispatch


async def test_an_unreadable_new_version_stops_the_running_one_until_readable(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = ControllableClient()
    scheduler = DispatchScheduler(MICROGRID, client, clock=clock.now)
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    receiver = scheduler.new_running_state_event_receiver("TEST")
    async with scheduler:
        await scheduler.wait_for_initialization()
        created = await create(client, start_time=START + MINUTE, duration=HOUR)
        await clock.advance(2 * MINUTE)
        assert [m.started for m in drain(receiver)] == [True]
        # Read now: pending lifecycle events of one dispatch coalesce.
        assert [type(e).__name__ for e in drain(lifecycle)] == ["Created"]
        client.service.push_raw(
            StreamMicrogridDispatchesResponse(
                event=Event.UPDATED.value, dispatch=_unreadable(created)
            )
        )
        await settle()
        [stop] = drain(receiver)
        assert not stop.started
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(
            f"dispatch {int(created.id)} " in t and "field payload" in t for t in errors
        ), errors
        # It stays stopped, also past the time its next change would have been.
        await clock.advance(2 * HOUR)
        assert drain(receiver) == []
        # A readable version brings it back.
        await update(client, created.id, duration=3 * HOUR)
        await settle()
        assert states(drain(receiver)) == [
            (int(created.id), True, START + MINUTE + 3 * HOUR)
        ]
        assert [type(e).__name__ for e in drain(lifecycle)] == ["Updated"]


async def test_an_unreadable_delete_acts_on_the_id(clock: FakeClock) -> None:
    client = ControllableClient()
    scheduler = DispatchScheduler(MICROGRID, client, clock=clock.now)
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    receiver = scheduler.new_running_state_event_receiver("TEST")
    async with scheduler:
        await scheduler.wait_for_initialization()
        created = await create(client, start_time=START + MINUTE, duration=HOUR)
        await clock.advance(2 * MINUTE)
        drain(lifecycle)
        drain(receiver)
        client.service.push_raw(
            StreamMicrogridDispatchesResponse(
                event=Event.DELETED.value, dispatch=_unreadable(created)
            )
        )
        await settle()
        [stop] = drain(receiver)
        assert (stop.started, stop.deleted) == (False, True)
        [deleted] = drain(lifecycle)
        assert type(deleted).__name__ == "Deleted"
        assert int(deleted.dispatch.id) == int(created.id)


# 6. Isolation of user code


class _FailingIdentity(MergeByType):
    """A user strategy whose identity() raises for every dispatch."""

    @override
    def identity(self, dispatch: Dispatch) -> int:
        raise RuntimeError("bug in user code")


class _FailingFilter(MergeByType):
    """A user strategy whose filter() raises for every event."""

    @override
    def filter(self, dispatches: Mapping[Any, Dispatch], dispatch: Dispatch) -> bool:
        raise RuntimeError("bug in user code")


@pytest.mark.parametrize("faulty", [_FailingIdentity, _FailingFilter])
@pytest.mark.parametrize("via_timer", [False, True])
async def test_a_raising_strategy_affects_only_its_receiver(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    caplog: pytest.LogCaptureFixture,
    faulty: type[MergeByType],
    via_timer: bool,
) -> None:
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    broken = scheduler.new_running_state_event_receiver("TEST", merge_strategy=faulty())
    plain = scheduler.new_running_state_event_receiver("TEST")
    merged = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=MergeByType()
    )
    start = START + MINUTE if via_timer else "NOW"
    created = await create(client, start_time=start, duration=10 * MINUTE)
    await clock.advance(2 * MINUTE)
    # Everybody else: exactly as without the faulty strategy.
    assert [type(e).__name__ for e in drain(lifecycle)] == ["Created"]
    for receiver in (plain, merged):
        assert [m.started for m in drain(receiver)] == [True]
    await update(client, created.id, payload={"v": 1})
    await settle()
    assert [type(e).__name__ for e in drain(lifecycle)] == ["Updated"]
    for receiver in (plain, merged):
        assert [m.payload for m in drain(receiver)] == [{"v": 1}]
    await clock.advance(10 * MINUTE)
    for receiver in (plain, merged):
        assert [m.started for m in drain(receiver)] == [False]
    # Its own receiver: never started; the stop (fail safe) goes through.
    assert [m.started for m in drain(broken)] == [False]
    # Logged once for the dispatch, naming the strategy.
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines
    assert faulty.__name__ in lines[0] and f"dispatch {int(created.id)}" in lines[0]
    assert scheduler.resyncs == 1  # the sync task never crashed
    # The schedule still works: the next dispatch runs on time.
    later = await create(client, start_time=START + HOUR, duration=MINUTE)
    await clock.advance_to(START + HOUR + MS)
    assert states(drain(plain)) == [(int(later.id), True, START + HOUR + MINUTE)]


async def test_a_raising_dispatch_identity_affects_only_its_actor_dispatcher(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _Recorder.log = []
    calls: dict[int, int] = {}

    def identity(dispatch: Dispatch) -> Hashable:
        # Works for the start, then fails: its stop must still reach the actor.
        calls[int(dispatch.id)] = calls.get(int(dispatch.id), 0) + 1
        if dispatch.payload.get("n") == "bad" or calls[int(dispatch.id)] > 1:
            raise RuntimeError("bug in user code")
        return int(dispatch.id)

    faulty = ActorDispatcher(
        _make_recorder,
        scheduler.new_running_state_event_receiver("TEST"),
        dispatch_identity=identity,
    )
    healthy = ActorDispatcher(
        _make_recorder, scheduler.new_running_state_event_receiver("TEST")
    )
    async with faulty, healthy:
        good = await create(
            client, start_time=START + MINUTE, duration=MINUTE, payload={"n": "good"}
        )
        bad = await create(
            client, start_time=START + MINUTE, duration=MINUTE, payload={"n": "bad"}
        )
        await clock.advance(3 * MINUTE)
        await settle()
    # The healthy one ran both; the faulty one ran (and stopped) the good one.
    assert sorted(_Recorder.log) == sorted(
        [
            *("created good", "created bad", "created good"),
            *("stopped good", "stopped bad", "stopped good"),
        ]
    )
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum(f"dispatch {int(bad.id)} " in t for t in lines) == 1, lines
    assert sum(f"dispatch {int(good.id)} " in t for t in lines) == 1, lines
