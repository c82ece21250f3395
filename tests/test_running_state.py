# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Running-state events: one per window start and end, and one per relevant change."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch import Dispatch
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .helpers import create, delete, drain, make_dispatch, update

MINUTE = timedelta(minutes=1)


async def test_start_and_end_are_sent_exactly_on_time(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(client, start_time=START + 5 * MINUTE, duration=10 * MINUTE)

    started = await receiver.receive()
    assert (started.id, started.started, started.until) == (
        created.id,
        True,
        START + 15 * MINUTE,
    )
    assert clock.now() == START + 5 * MINUTE

    stopped = await receiver.receive()
    assert (stopped.id, stopped.started, stopped.until) == (created.id, False, None)
    assert clock.now() == START + 15 * MINUTE


async def test_a_late_subscriber_gets_what_runs_now(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    running = await create(client, start_time=START + MINUTE, duration=None)
    await create(client, start_time=START + 2 * MINUTE, type="OTHER", duration=None)
    await create(client, start_time=START + 30 * MINUTE)
    await clock.advance(5 * MINUTE)

    receiver = await scheduler.new_running_state_event_receiver("TEST")
    assert [(d.id, d.started) for d in drain(receiver)] == [(running.id, True)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload", {"power": 42}),
        ("target", TargetIds(7)),
        ("duration", timedelta(minutes=30)),
    ],
)
async def test_a_change_to_a_running_dispatch_reconfigures_it(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    field: str,
    value: object,
) -> None:
    created = await create(client, start_time=START + MINUTE)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(2 * MINUTE)
    assert [d.started for d in drain(receiver)] == [True]

    await update(client, created.id, **{field: value})
    await settle()
    [message] = drain(receiver)
    assert message.started
    assert getattr(message, field) == value


async def test_dry_run_change_of_a_running_dispatch_is_sent(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    # The client cannot update dry_run, so the new version arrives as the service
    # would send it after such a change.
    receiver = scheduler.new_running_state_event_receiver("TEST")
    scheduler.apply(Event.CREATED, Dispatch(make_dispatch(1, start_time=START)))
    assert [(d.started, d.dry_run) for d in drain(receiver)] == [(True, False)]
    scheduler.apply(
        Event.UPDATED, Dispatch(make_dispatch(1, start_time=START, dry_run=True))
    )
    assert [(d.started, d.dry_run) for d in drain(receiver)] == [(True, True)]
    del clock


async def test_shortening_a_running_dispatch_into_the_past_stops_it(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    created = await create(client, start_time=START + MINUTE, duration=60 * MINUTE)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(30 * MINUTE)
    drain(receiver)

    await update(client, created.id, duration=10 * MINUTE)
    await settle()
    assert [d.started for d in drain(receiver)] == [False]


async def test_moving_a_running_dispatch_into_the_future_stops_it_until_then(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    created = await create(client, start_time=START + MINUTE)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(2 * MINUTE)
    drain(receiver)

    await update(client, created.id, start_time=START + 60 * MINUTE)
    await settle()
    assert [d.started for d in drain(receiver)] == [False]
    again = await receiver.receive()
    assert again.started
    assert clock.now() == START + 60 * MINUTE


async def test_deactivating_and_reactivating(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    created = await create(client, start_time=START + MINUTE, duration=None)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(2 * MINUTE)
    drain(receiver)

    await update(client, created.id, active=False)
    await settle()
    assert [d.started for d in drain(receiver)] == [False]
    await update(client, created.id, active=True)
    await settle()
    assert [d.started for d in drain(receiver)] == [True]


async def test_deleting_a_running_dispatch_stops_it(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    created = await create(client, start_time=START + MINUTE, duration=None)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(2 * MINUTE)
    [start] = drain(receiver)

    await delete(client, created.id)
    await settle()
    [stop] = drain(receiver)
    assert (stop.id, stop.started, stop.deleted) == (created.id, False, True)
    # Sent messages are immutable: the start read late still says started.
    assert start.started and not start.deleted


async def test_nothing_is_sent_for_changes_that_affect_nothing_running(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    future = await create(client, start_time=START + 60 * MINUTE)
    past = await create(client, start_time=START + MINUTE, duration=MINUTE)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(5 * MINUTE)
    assert [d.started for d in drain(receiver)] == [True, False]

    await update(client, future.id, payload={"a": 1})
    await update(client, future.id, target=TargetIds(9))
    await update(client, past.id, payload={"b": 2})
    await delete(client, past.id)
    await settle()
    assert drain(receiver) == []

    # The future dispatch starts with the configuration it has by then.
    started = await receiver.receive()
    assert started.payload == {"a": 1} and started.target == TargetIds(9)


async def test_a_dispatch_without_duration_runs_forever_ignoring_recurrence(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await create(
        client,
        start_time=START + MINUTE,
        duration=None,
        recurrence=RecurrenceRule(frequency=Frequency.MINUTELY, interval=5),
    )
    started = await receiver.receive()
    assert started.started and started.until is None
    for _ in range(400):
        await clock.advance(timedelta(days=1))
        assert drain(receiver) == []
    assert scheduler._schedule.next_due() is None


async def test_every_window_of_a_recurring_dispatch_over_a_year(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await create(
        client,
        start_time=START + MINUTE,
        duration=timedelta(hours=1),
        recurrence=RecurrenceRule(frequency=Frequency.DAILY, interval=1),
    )
    seen: list[tuple[bool, object]] = []
    async with asyncio.timeout(timedelta(days=365).total_seconds()):
        while len(seen) < 2 * 365:
            message = await receiver.receive()
            seen.append((message.started, clock.now()))
    assert seen[0] == (True, START + MINUTE)
    assert seen[1] == (False, START + MINUTE + timedelta(hours=1))
    assert seen[-2] == (True, START + MINUTE + timedelta(days=364))
    assert [started for started, _ in seen] == [True, False] * 365


async def test_back_to_back_windows_send_one_start_per_window_and_no_stop(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await create(
        client,
        start_time=START + MINUTE,
        duration=10 * MINUTE,
        recurrence=RecurrenceRule(
            frequency=Frequency.MINUTELY,
            interval=10,
            end_criteria=EndCriteria(count=3),
        ),
    )
    messages = [await receiver.receive() for _ in range(4)]
    assert [(d.started, d.until) for d in messages] == [
        (True, START + 11 * MINUTE),
        (True, START + 21 * MINUTE),
        (True, START + 31 * MINUTE),
        (False, None),
    ]
    assert clock.now() == START + 31 * MINUTE


async def test_simultaneous_starts_and_ends_are_all_sent(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    first = await create(client, start_time=START + MINUTE, duration=2 * MINUTE)
    second = await create(client, start_time=START + MINUTE, duration=2 * MINUTE)
    # A third one starts exactly when the first two end.
    third = await create(client, start_time=START + 3 * MINUTE, duration=MINUTE)
    messages = [await receiver.receive() for _ in range(6)]
    assert [(d.id, d.started) for d in messages] == [
        (first.id, True),
        (second.id, True),
        (third.id, True),  # at one instant, starts come before stops
        (first.id, False),
        (second.id, False),
        (third.id, False),
    ]
    assert clock.now() == START + 4 * MINUTE


async def test_a_wall_clock_jump_forward_misses_the_closed_window(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    created = await create(client, start_time=START + MINUTE, duration=MINUTE)
    await settle()
    # The wall clock leaps an hour (suspend, NTP): the window closed before the
    # library got to it, so it is missed, not replayed as a start and a stop.
    clock.jump(timedelta(hours=1))
    await update(client, created.id, payload={"nudge": True})
    await settle()
    assert drain(receiver) == []
    assert scheduler._schedule.missed_runs_by_type() == {"TEST": 1}


async def test_a_timer_that_fires_early_rearms_instead_of_sending(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await create(client, start_time=START + 10 * MINUTE)
    await settle()
    # The wall clock goes back 5 minutes after the timer was armed: when the
    # loop's timer fires, the wall clock says the start is still 5 minutes off.
    clock.jump(-5 * MINUTE)
    await clock.advance(10 * MINUTE)
    assert drain(receiver) == []
    started = await receiver.receive()
    assert started.started
    assert clock.now() == START + 10 * MINUTE


async def test_a_slow_consumer_gets_every_start_and_stop_of_a_burst(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    count = 3000
    receiver = scheduler.new_running_state_event_receiver("TEST")
    for _ in range(count):
        await create(client, start_time=START + MINUTE, duration=MINUTE)
        await asyncio.sleep(0)  # the fake service's own stream buffer holds 50
    starts: set[object] = set()
    stops: set[object] = set()
    while len(stops) < count:
        message = await receiver.receive()
        (starts if message.started else stops).add(message.id)
        await asyncio.sleep(0.001)  # 1 ms per message: far slower than the burst
    assert len(starts) == count
    assert len(stops) == count


async def test_pending_reconfigurations_are_merged_into_the_latest(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    created = await create(client, start_time=START + MINUTE, duration=None)
    receiver = scheduler.new_running_state_event_receiver("TEST")
    await clock.advance(2 * MINUTE)
    for power in range(100):
        await update(client, created.id, payload={"power": power})
    await settle()
    messages = drain(receiver)
    # The start was not read yet: it is replaced by the newest configuration,
    # so the consumer reads one start carrying the latest payload.
    assert [(d.started, d.payload) for d in messages] == [(True, {"power": 99})]


def test_messages_are_snapshots() -> None:
    dispatch = Dispatch(make_dispatch(1, start_time=START))
    window = dispatch.window_at(START)
    message = dispatch.with_running_state(window)
    assert message.started and message.until == START + timedelta(minutes=10)
    assert message == dispatch  # equal as dispatches: same fields
