# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Sync with the service: list + stream, resync after reconnects, bad input."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from frequenz.api.dispatch.v1.dispatch_pb2 import StreamMicrogridDispatchesResponse
from frequenz.channels import Receiver
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatch, DispatchEvent
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._sync import Backoff, DispatchSync
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .fake_service import ControllableClient
from .helpers import MICROGRID, create, drain, make_dispatch

FAST_RETRY = Backoff(initial=timedelta(seconds=1), maximum=timedelta(seconds=1))
"""Retry every second: keeps the disconnection windows in these tests short."""

Lifecycle = tuple[str, int]
Running = tuple[int, bool, datetime | None, dict[str, Any], bool]


def lifecycle(event: DispatchEvent) -> Lifecycle:
    """Summarize a lifecycle event."""
    return (type(event).__name__, int(event.dispatch.id))


def running(message: Dispatch) -> Running:
    """Summarize a running-state event."""
    return (
        int(message.id),
        message.started,
        message.until,
        dict(message.payload),
        message.deleted,
    )


def by_id(
    events: list[DispatchEvent], messages: list[Dispatch]
) -> tuple[dict[int, list[DispatchEvent]], dict[int, list[Running]]]:
    """Group lifecycle and running-state events per dispatch id, keeping order."""
    lifecycle_by_id: dict[int, list[DispatchEvent]] = defaultdict(list)
    for event in events:
        lifecycle_by_id[int(event.dispatch.id)].append(event)
    running_by_id: dict[int, list[Running]] = defaultdict(list)
    for message in messages:
        running_by_id[int(message.id)].append(running(message))
    return dict(lifecycle_by_id), dict(running_by_id)


class Observed:
    """A started scheduler with a lifecycle and a running-state receiver."""

    def __init__(self, scheduler: DispatchScheduler, client: ControllableClient):
        self.scheduler = scheduler
        self.client = client
        self.service = client.service
        self.lifecycle: Receiver[DispatchEvent] = (
            scheduler.new_lifecycle_events_receiver("TEST")
        )
        self.running: Receiver[Dispatch] = scheduler.new_running_state_event_receiver(
            "TEST"
        )

    def lifecycle_events(self) -> list[DispatchEvent]:
        """Return the lifecycle events received so far."""
        return drain(self.lifecycle)

    def running_events(self) -> list[Dispatch]:
        """Return the running-state events received so far."""
        return drain(self.running)


@asynccontextmanager
async def observed(
    client: ControllableClient | None = None,
    *,
    backoff: Backoff = FAST_RETRY,
    initialize: bool = True,
) -> AsyncIterator[Observed]:
    """Run a scheduler on a controllable fake service for the block."""
    client = ControllableClient() if client is None else client
    scheduler = DispatchScheduler(MICROGRID, client, backoff=backoff)
    watched = Observed(scheduler, client)
    scheduler.start()
    try:
        if initialize:
            await scheduler.wait_for_initialization()
            await settle()
        yield watched
    finally:
        await scheduler.stop()


async def advance_until(
    clock: FakeClock,
    condition: Callable[[], bool],
    *,
    step: timedelta = timedelta(milliseconds=100),
    limit: timedelta = timedelta(minutes=1),
) -> None:
    """Let fake time pass in small steps until `condition` holds."""
    deadline = clock.now() + limit
    while not condition():
        assert clock.now() < deadline, "condition never became true"
        await elapse(clock, step)
    await settle()


async def elapse(clock: FakeClock, delta: timedelta) -> None:
    """Let fake time pass, then let every task woken at the end run."""
    await clock.advance(delta)
    await settle()


def store(client: ControllableClient, dispatch: ClientDispatch) -> None:
    """Put a dispatch in the service's storage, bypassing the stream."""
    client.service.dispatches.setdefault(MICROGRID, []).append(dispatch)
    client.service.refresh_last_id_for(MICROGRID)


def unreadable_pb_dispatch(dispatch_id: int, now: datetime) -> Any:
    """Return a protobuf dispatch with a frequency value no client knows."""
    pb_dispatch = make_dispatch(
        dispatch_id,
        start_time=now + timedelta(minutes=1),
        recurrence=RecurrenceRule(frequency=Frequency.DAILY, interval=1),
    ).to_protobuf()
    pb_dispatch.data.recurrence.freq = cast(Any, 99)
    return pb_dispatch


IMPOSSIBLE = RecurrenceRule(
    frequency=Frequency.DAILY, interval=1, bymonthdays=[31], bymonths=[2]
)
"""February 31st: never happens."""


# Subscribe, then list


async def test_stream_is_subscribed_before_the_list_so_nothing_is_lost(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    service = client.service
    before = await create(client, start_time=clock.now() + timedelta(minutes=1))
    racing: list[ClientDispatch] = []

    async def create_right_after_the_list_snapshot() -> None:
        service.after_list = None
        racing.append(
            await create(client, start_time=clock.now() + timedelta(minutes=2))
        )

    service.after_list = create_right_after_the_list_snapshot

    async with observed(client) as watched:
        assert service.call_kinds == ["stream", "subscribed", "list"]
        stream_call, _, list_call = service.calls
        assert stream_call.timeout is None  # a deadline would end the stream
        assert list_call.timeout == client.call_timeout.total_seconds()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(before.id)),
            ("Created", int(racing[0].id)),
        ]
        # The racing dispatch is scheduled too, not only announced.
        await elapse(clock, timedelta(minutes=2))
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (int(before.id), True),
            (int(racing[0].id), True),
        ]


async def test_the_list_waits_until_the_server_confirms_the_subscription(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    client.service.call_style = "confirming"
    client.service.subscribe_delay = timedelta(seconds=1)
    created: list[ClientDispatch] = []

    async def create_before_the_subscription_is_live() -> None:
        await asyncio.sleep(0.5)
        created.append(
            await create(client, start_time=clock.now() + timedelta(minutes=1))
        )

    racer = asyncio.create_task(create_before_the_subscription_is_live())
    async with observed(client) as watched:
        await racer
        assert [(c.kind, c.at - START) for c in client.service.calls] == [
            ("stream", timedelta(0)),
            ("subscribed", timedelta(seconds=1)),
            ("list", timedelta(seconds=1)),  # not before, not after a grace period
        ]
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(created[0].id))
        ]


async def test_a_server_that_confirms_late_does_not_stall_the_sync(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    client.service.call_style = "lazy"  # headers only come with the first message
    created: list[ClientDispatch] = []

    async def create_while_waiting_for_headers() -> None:
        await asyncio.sleep(1)
        created.append(
            await create(client, start_time=clock.now() + timedelta(minutes=1))
        )

    racer = asyncio.create_task(create_while_waiting_for_headers())
    async with observed(client) as watched:
        await racer
        lists = [c.at - START for c in client.service.calls if c.kind == "list"]
        # The event of the creation confirmed the subscription at once.
        assert lists == [timedelta(seconds=1)]
        # Seen on the stream and in the list: reported once.
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(created[0].id))
        ]

    quiet = ControllableClient()
    quiet.service.call_style = "lazy"
    async with observed(quiet) as watched:
        lists = [c.at - START for c in quiet.service.calls if c.kind == "list"]
        assert lists == [timedelta(seconds=1) + DispatchSync.SUBSCRIPTION_GRACE]
        assert watched.scheduler.resyncs == 1


async def test_every_list_page_is_read(clock: FakeClock) -> None:
    client = ControllableClient()
    client.service.page_size = 2
    created = [
        await create(client, start_time=clock.now() + timedelta(minutes=1))
        for _ in range(5)
    ]
    async with observed(client) as watched:
        assert client.service.call_kinds.count("list") == 3
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(d.id)) for d in created
        ]


# An unreachable service at start


async def test_failed_first_list_is_logged_and_retried_with_backoff(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = ControllableClient()
    client.service.fail_lists(4)
    existing = await create(client, start_time=clock.now() + timedelta(hours=1))
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=4), jitter=False
    )

    async with observed(client, backoff=backoff) as watched:
        assert clock.now() == START + timedelta(seconds=11)
        lists = [
            call.at - START for call in client.service.calls if call.kind == "list"
        ]
        # 1 s, then doubling, capped at 4 s.
        assert lists == [timedelta(seconds=s) for s in (0, 1, 3, 7, 11)]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        # One line per attempt for the first three, then one summary a minute.
        assert len(errors) == 3
        for attempt, record in enumerate(errors, start=1):
            text = record.getMessage()
            assert "microgrid 1" in text
            assert "mock" in text  # the FakeClient's server_url
            assert "UNAVAILABLE" in text
            assert f"attempt {attempt}" in text
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(existing.id))
        ]


async def test_wait_for_initialization_times_out_while_the_service_is_down(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    client.service.fail_lists(1_000_000)
    async with observed(client, initialize=False) as watched:
        with pytest.raises(TimeoutError):
            await watched.scheduler.wait_for_initialization(
                timeout=timedelta(seconds=10)
            )
        assert clock.now() == START + timedelta(seconds=10)
        # It did not give up: once the service answers, the sync completes.
        client.service.fail_lists(0)
        await watched.scheduler.wait_for_initialization(timeout=timedelta(seconds=2))
        assert watched.scheduler.resyncs == 1


async def test_wait_for_initialization_of_a_scheduler_never_started_raises(
    clock: FakeClock,
) -> None:
    del clock
    scheduler = DispatchScheduler(MICROGRID, ControllableClient())
    with pytest.raises(RuntimeError):
        await scheduler.wait_for_initialization()
    with pytest.raises(RuntimeError):
        await scheduler.wait_for_initialization(timeout=timedelta(seconds=1))


async def test_wait_for_initialization_raises_when_stopped_before_the_first_sync(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    client.service.fail_lists(1_000_000)
    scheduler = DispatchScheduler(MICROGRID, client, backoff=FAST_RETRY)
    scheduler.start()
    await elapse(clock, timedelta(seconds=3))
    await scheduler.stop()
    with pytest.raises(RuntimeError):
        await scheduler.wait_for_initialization()


async def test_wait_for_initialization_raises_when_stopped_while_waiting(
    clock: FakeClock,
) -> None:
    client = ControllableClient()
    client.service.fail_lists(1_000_000)
    scheduler = DispatchScheduler(MICROGRID, client, backoff=FAST_RETRY)
    scheduler.start()
    waiter = asyncio.create_task(scheduler.wait_for_initialization())
    await elapse(clock, timedelta(seconds=3))
    assert not waiter.done()
    await scheduler.stop()
    with pytest.raises(RuntimeError):
        await waiter
    assert clock.now() == START + timedelta(seconds=3)  # at once, no waiting


async def test_backoff_starts_over_after_a_successful_sync(clock: FakeClock) -> None:
    client = ControllableClient()
    client.service.fail_lists(3)
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=30), jitter=False
    )
    async with observed(client, backoff=backoff) as watched:
        assert clock.now() == START + timedelta(seconds=7)  # after 1 + 2 + 4 s
        await elapse(clock, timedelta(hours=1))

        watched.service.break_streams()
        watched.service.reconnect()  # only a blip
        broke_at = clock.now()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        # The failures before the healthy hour do not count anymore.
        relisted = [c.at for c in watched.service.calls if c.kind == "list"][-1]
        assert relisted - broke_at == backoff.initial


# Resync after a broken stream


async def _seed(client: ControllableClient, now: datetime) -> list[DispatchId]:
    """Create the dispatches the resync comparison starts from: ids 1 to 8."""
    soon = now + timedelta(minutes=1)
    later = now + timedelta(hours=2)
    hour = timedelta(hours=1)
    specs: list[dict[str, Any]] = [
        {"start_time": soon, "duration": hour, "payload": {"v": 1}},  # 1: payload
        {"start_time": soon, "duration": hour},  # 2: deleted while running
        {"start_time": soon, "duration": hour},  # 3: deactivated
        {"start_time": later, "duration": hour},  # 4: moved to the past
        {"start_time": later, "duration": hour},  # 5: untouched, not running
        {"start_time": soon, "duration": hour},  # 6: untouched, running
        {"start_time": later + hour, "duration": hour},  # 7: deleted, not running
        {"start_time": soon, "duration": hour},  # 8: longer
    ]
    return [(await create(client, **spec)).id for spec in specs]


async def _change_while_disconnected(client: ControllableClient, now: datetime) -> None:
    """Change, delete and create dispatches (ids 9 and 10 are new)."""
    ids = [DispatchId(i) for i in range(1, 9)]

    async def update(index: int, **fields: Any) -> None:
        await client.update(
            microgrid_id=MICROGRID, dispatch_id=ids[index - 1], new_fields=fields
        )

    await update(1, payload={"v": 2})
    await client.delete(microgrid_id=MICROGRID, dispatch_id=ids[1])
    await update(3, active=False)
    await update(4, start_time=now - timedelta(minutes=1))
    await client.delete(microgrid_id=MICROGRID, dispatch_id=ids[6])
    await update(8, duration=timedelta(hours=2))
    await create(client, start_time="NOW", duration=timedelta(minutes=30))  # 9
    await create(client, start_time=now + timedelta(hours=5))  # 10


async def test_resync_after_a_broken_stream_sends_what_the_stream_would_have(
    clock: FakeClock,
) -> None:
    async with observed() as broken, observed() as steady:
        for watched in (broken, steady):
            await _seed(watched.client, clock.now())
        await elapse(clock, timedelta(minutes=2))
        assert [lifecycle(e) for e in broken.lifecycle_events()] == [
            lifecycle(e) for e in steady.lifecycle_events()
        ]
        assert [running(m) for m in broken.running_events()] == [
            running(m) for m in steady.running_events()
        ]

        broken.service.break_streams()
        await settle()
        pushed = broken.service.pushed
        changed_at = clock.now()
        for watched in (broken, steady):
            await _change_while_disconnected(watched.client, changed_at)
        await settle()
        assert broken.service.pushed == pushed  # nothing reached the broken one
        assert broken.lifecycle_events() == []
        assert broken.running_events() == []

        await elapse(clock, timedelta(seconds=5))
        broken.service.reconnect()
        await advance_until(clock, lambda: broken.scheduler.resyncs == 2)

        broken_lifecycle, broken_running = by_id(
            broken.lifecycle_events(), broken.running_events()
        )
        steady_lifecycle, steady_running = by_id(
            steady.lifecycle_events(), steady.running_events()
        )
        assert broken_lifecycle == steady_lifecycle
        assert broken_running == steady_running
        # And concretely:
        assert {
            i: [lifecycle(e) for e in events] for i, events in broken_lifecycle.items()
        } == {
            1: [("Updated", 1)],
            2: [("Deleted", 2)],
            3: [("Updated", 3)],
            4: [("Updated", 4)],
            7: [("Deleted", 7)],
            8: [("Updated", 8)],
            9: [("Created", 9)],
            10: [("Created", 10)],
        }
        window_end = START + timedelta(minutes=61)
        assert broken_running == {
            1: [(1, True, window_end, {"v": 2.0}, False)],
            2: [(2, False, None, {}, True)],
            3: [(3, False, None, {}, False)],
            4: [(4, True, changed_at + timedelta(minutes=59), {}, False)],
            8: [(8, True, window_end + timedelta(hours=1), {}, False)],
            9: [(9, True, changed_at + timedelta(minutes=30), {}, False)],
        }

        # From now on both follow the same timeline.
        await elapse(clock, timedelta(hours=6))
        remaining = [running(m) for m in broken.running_events()]
        assert remaining == [running(m) for m in steady.running_events()]
        started: dict[int, list[bool]] = defaultdict(list)
        for message in remaining:
            started[message[0]].append(message[1])
        assert started == {
            1: [False],
            4: [False],
            5: [True, False],
            6: [False],
            8: [False],
            9: [False],
            10: [True, False],
        }


async def test_the_schedule_keeps_running_while_the_service_is_down(
    clock: FakeClock,
) -> None:
    async with observed() as watched:
        dispatch = await create(
            watched.client,
            start_time=clock.now() + timedelta(minutes=10),
            duration=timedelta(minutes=20),
        )
        await settle()
        watched.service.break_streams()
        seen: list[tuple[datetime, bool]] = []
        while clock.now() < START + timedelta(hours=1):
            await elapse(clock, timedelta(minutes=1))
            seen.extend((clock.now(), m.started) for m in watched.running_events())
        assert seen == [
            (dispatch.start_time, True),
            (dispatch.start_time + timedelta(minutes=20), False),
        ]
        assert watched.scheduler.resyncs == 1  # the service never came back


async def test_a_stream_closed_by_the_server_is_reopened_and_resynced(
    clock: FakeClock,
) -> None:
    async with observed() as watched:
        service = watched.service
        first = await create(
            watched.client, start_time=clock.now() + timedelta(hours=1)
        )
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(first.id))
        ]

        service.close_streams()
        await settle()
        assert service.open_streams == 0
        # Made while no stream is open: only a new list can find it.
        missed = await create(
            watched.client, start_time=clock.now() + timedelta(minutes=1)
        )
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        assert watched.scheduler.is_running
        assert service.call_kinds == ["stream", "subscribed", "list"] * 2
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(missed.id))
        ]

        # The new stream is followed.
        after = await create(
            watched.client, start_time=clock.now() + timedelta(hours=2)
        )
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(after.id))
        ]
        await elapse(clock, timedelta(minutes=1))
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (int(missed.id), True)
        ]


async def test_a_finished_dispatch_is_not_reported_deleted_after_a_resync(
    clock: FakeClock,
) -> None:
    async with observed() as watched:
        finished = await create(
            watched.client,
            start_time=clock.now() + timedelta(minutes=1),
            duration=timedelta(minutes=1),
        )
        await elapse(clock, timedelta(minutes=3))
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(finished.id))
        ]
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (int(finished.id), True),
            (int(finished.id), False),
        ]

        watched.service.break_streams()
        await elapse(clock, timedelta(seconds=3))
        watched.service.reconnect()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        await elapse(clock, timedelta(hours=1))
        assert watched.lifecycle_events() == []
        assert watched.running_events() == []


async def test_a_delete_seen_in_the_resync_and_on_the_stream_is_reported_once(
    clock: FakeClock,
) -> None:
    async with observed() as watched:
        client, service = watched.client, watched.service
        doomed = await create(client, start_time=clock.now() + timedelta(minutes=1))
        await elapse(clock, timedelta(minutes=2))
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(doomed.id))
        ]
        assert [m.started for m in watched.running_events()] == [True]

        service.break_streams()
        await settle()
        await client.delete(microgrid_id=MICROGRID, dispatch_id=doomed.id)

        async def replay_the_delete() -> None:
            # A server that replays the deletion on the new stream, before the list.
            service.on_subscribe = None
            service.push_event(Event.DELETED, doomed)

        service.on_subscribe = replay_the_delete
        service.reconnect()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        # ... and once more after the list.
        service.push_event(Event.DELETED, doomed)
        await settle()

        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Deleted", int(doomed.id))
        ]
        assert [(m.started, m.deleted) for m in watched.running_events()] == [
            (False, True)
        ]


async def test_an_update_and_delete_racing_the_resync_do_not_resurrect_it(
    clock: FakeClock,
) -> None:
    async with observed() as watched:
        client, service = watched.client, watched.service
        doomed = await create(client, start_time=clock.now() + timedelta(minutes=1))
        await elapse(clock, timedelta(minutes=2))
        assert [m.started for m in watched.running_events()] == [True]
        watched.lifecycle_events()

        service.break_streams()
        await elapse(clock, timedelta(seconds=2))

        async def update_then_delete() -> None:
            # Both events land on the new stream before the list is taken.
            service.on_subscribe = None
            await client.update(
                microgrid_id=MICROGRID,
                dispatch_id=doomed.id,
                new_fields={"payload": {"v": 2}},
            )
            await client.delete(microgrid_id=MICROGRID, dispatch_id=doomed.id)

        service.on_subscribe = update_then_delete
        service.reconnect()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)

        events = [lifecycle(e) for e in watched.lifecycle_events()]
        messages = [running(m) for m in watched.running_events()]
        # Either the update is seen before the delete, or the delete supersedes
        # it; the dispatch is never created again, and deleted only once.
        assert events in (
            [("Deleted", int(doomed.id))],
            [("Updated", int(doomed.id)), ("Deleted", int(doomed.id))],
        )
        until = START + timedelta(minutes=11)
        assert messages in (
            [(int(doomed.id), False, None, {}, True)],
            [
                (int(doomed.id), True, until, {"v": 2.0}, False),
                (int(doomed.id), False, None, {"v": 2.0}, True),
            ],
        )


# Stale events


async def test_an_older_event_never_overwrites_newer_state(clock: FakeClock) -> None:
    async with observed() as watched:
        client, service = watched.client, watched.service
        original = await create(
            client,
            start_time=clock.now() + timedelta(minutes=1),
            duration=timedelta(hours=1),
            payload={"v": 1},
        )
        await elapse(clock, timedelta(minutes=2))
        assert [running(m) for m in watched.running_events()] == [
            (1, True, START + timedelta(minutes=61), {"v": 1.0}, False),
        ]
        # Read now: unread events of one dispatch would coalesce into one.
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(original.id)),
        ]
        newer = await client.update(
            microgrid_id=MICROGRID,
            dispatch_id=original.id,
            new_fields={"payload": {"v": 2}, "duration": timedelta(hours=2)},
        )
        await settle()
        assert original.update_time < newer.update_time
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Updated", int(original.id)),
        ]
        until = START + timedelta(minutes=121)
        assert [running(m) for m in watched.running_events()] == [
            (1, True, until, {"v": 2.0}, False),
        ]

        # The old version arrives late, as an update and as a creation.
        service.push_event(Event.UPDATED, original)
        service.push_event(Event.CREATED, original)
        await settle()
        # Past the end of the old version's window: had it been applied, it
        # would stop here.
        await elapse(clock, timedelta(minutes=60))
        assert watched.lifecycle_events() == []
        assert watched.running_events() == []

        current = drain(watched.scheduler.new_running_state_event_receiver("TEST"))
        assert [running(m) for m in current] == [(1, True, until, {"v": 2.0}, False)]
        await elapse(clock, timedelta(hours=1))
        assert [running(m) for m in watched.running_events()] == [
            (1, False, None, {"v": 2.0}, False)
        ]


# Dispatches the scheduler cannot interpret


async def test_uninterpretable_dispatches_in_the_list_are_logged_and_skipped(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = ControllableClient()
    good = await create(client, start_time=clock.now() + timedelta(minutes=1))
    also_good = await create(client, start_time=clock.now() + timedelta(minutes=2))
    store(
        client,
        make_dispatch(
            41, start_time=clock.now() + timedelta(minutes=1), recurrence=IMPOSSIBLE
        ),
    )
    client.service.extra_list_dispatches.append(unreadable_pb_dispatch(42, clock.now()))

    async with observed(client) as watched:
        # 41 never runs (31 February) but is a valid dispatch; 42 is unreadable.
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(good.id)),
            ("Created", int(also_good.id)),
            ("Created", 41),
        ]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not any("dispatch 41" in text for text in errors), errors
        assert any("dispatch 42" in text for text in errors), errors
        await elapse(clock, timedelta(minutes=2))
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (int(good.id), True),
            (int(also_good.id), True),
        ]
        # A later resync does not stumble on them either.
        watched.service.break_streams()
        await elapse(clock, timedelta(seconds=2))
        watched.service.reconnect()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        assert watched.lifecycle_events() == []
        assert watched.running_events() == []


async def test_uninterpretable_dispatches_on_the_stream_are_logged_and_skipped(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with observed() as watched:
        service = watched.service
        soon = clock.now() + timedelta(minutes=1)
        service.push_raw(
            StreamMicrogridDispatchesResponse(
                event=Event.CREATED.value,
                dispatch=unreadable_pb_dispatch(51, clock.now()),
            )
        )
        service.push_event(
            Event.CREATED, make_dispatch(52, start_time=soon, recurrence=IMPOSSIBLE)
        )
        valid = make_dispatch(53, start_time=soon)
        unknown_event = StreamMicrogridDispatchesResponse(
            event=cast(Any, 77),
            dispatch=make_dispatch(54, start_time=soon).to_protobuf(),
        )
        service.push_raw(unknown_event)
        service.push_event(Event.CREATED, valid)
        await settle()

        # 52 never runs (31 February), but is a valid dispatch.
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", 52),
            ("Created", 53),
        ]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        for dispatch_id in ("51", "54"):
            assert any(f"dispatch {dispatch_id}" in text for text in errors), errors
        await elapse(clock, timedelta(minutes=1))
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (53, True)
        ]
        assert watched.scheduler.resyncs == 1  # no reconnect was needed


async def test_a_naive_datetime_is_logged_and_skipped(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing read from the wire can be naive; a caller feeding the scheduler
    # directly (its `apply`/`reconcile`) can.
    async with observed() as watched:
        soon = clock.now() + timedelta(minutes=1)
        naive = replace(
            make_dispatch(61, start_time=soon), start_time=soon.replace(tzinfo=None)
        )
        valid = make_dispatch(62, start_time=soon)
        watched.scheduler.apply(Event.CREATED, Dispatch(naive))
        watched.scheduler.apply(Event.CREATED, Dispatch(valid))
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [("Created", 62)]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("dispatch 61" in text for text in errors), errors

        watched.scheduler.reconcile([Dispatch(naive), Dispatch(valid)])
        await elapse(clock, timedelta(minutes=1))
        assert watched.lifecycle_events() == []
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (62, True)
        ]


async def test_an_unreadable_new_version_stops_it_alike_on_the_stream_and_in_a_resync(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with observed() as broken, observed() as steady:
        for watched in (broken, steady):
            await create(
                watched.client,
                start_time=clock.now() + timedelta(minutes=1),
                duration=timedelta(hours=1),
            )
        await elapse(clock, timedelta(minutes=2))
        for watched in (broken, steady):
            assert [lifecycle(e) for e in watched.lifecycle_events()] == [
                ("Created", 1)
            ]
            assert [(int(m.id), m.started) for m in watched.running_events()] == [
                (1, True)
            ]

        broken.service.break_streams()
        await settle()
        # The service now holds a version of dispatch 1 from a newer server.
        [stored] = broken.service.dispatches[MICROGRID]
        unreadable = replace(stored, update_time=clock.now()).to_protobuf()
        unreadable.data.recurrence.freq = cast(Any, 99)
        broken.service.dispatches[MICROGRID] = []
        broken.service.extra_list_dispatches.append(unreadable)
        steady.service.push_raw(
            StreamMicrogridDispatchesResponse(
                event=Event.UPDATED.value, dispatch=unreadable
            )
        )
        await elapse(clock, timedelta(seconds=2))
        broken.service.reconnect()
        await advance_until(clock, lambda: broken.scheduler.resyncs == 2)

        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert sum("dispatch 1 " in text for text in errors) == 2, errors
        assert all("field recurrence" in t for t in errors if "Skipping" in t)
        assert sum("Stopping dispatch 1:" in text for text in errors) == 2, errors
        # On the stream and after a resync alike: the replaced version is stopped
        # (fail safe); it was not deleted, so no lifecycle event.
        for watched in (broken, steady):
            assert watched.lifecycle_events() == []
            assert [(int(m.id), m.started) for m in watched.running_events()] == [
                (1, False)
            ]
        # A readable version brings it back.
        readable = replace(stored, update_time=clock.now(), payload={"v": 3})
        steady.service.push_event(Event.UPDATED, readable)
        await settle()
        assert [lifecycle(e) for e in steady.lifecycle_events()] == [("Updated", 1)]
        assert [(int(m.id), m.started) for m in steady.running_events()] == [(1, True)]


# Crashing internals


async def test_a_failing_background_task_is_logged_and_restarted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Restarts back off like reconnects. Whole seconds: the fake service rounds a
    # start time to the second, so a jittered restart would shift "later" by <1 s.
    exact = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=1), jitter=False
    )
    async with observed(backoff=exact) as watched:
        service = watched.service
        service.break_streams_with(RuntimeError("unexpected"))
        await settle()
        failures = [
            r
            for r in caplog.records
            if r.exc_info is not None and r.name.startswith("frequenz.dispatch")
        ]
        assert len(failures) == 1
        assert "sync" in failures[0].getMessage()
        assert "restart" in failures[0].getMessage()
        assert failures[0].exc_info is not None
        assert isinstance(failures[0].exc_info[1], RuntimeError)

        # Created while the task is down: the restarted task lists it.
        missed = await create(
            watched.client, start_time=clock.now() + timedelta(minutes=1)
        )
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        later = await create(
            watched.client, start_time=clock.now() + timedelta(minutes=2)
        )
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(missed.id)),
            ("Created", int(later.id)),
        ]
        await elapse(clock, timedelta(minutes=2))
        assert [(int(m.id), m.started) for m in watched.running_events()] == [
            (int(missed.id), True),
            (int(later.id), True),
        ]


async def test_a_stream_failing_unexpectedly_at_start_still_initializes(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = ControllableClient()
    client.service.fail_next_stream(KeyError("surprise"))
    existing = await create(client, start_time=clock.now() + timedelta(minutes=1))
    async with observed(client) as watched:
        await advance_until(clock, lambda: watched.service.open_streams == 1)
        assert any(
            r.exc_info is not None and isinstance(r.exc_info[1], KeyError)
            for r in caplog.records
        )
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(existing.id))
        ]
        pushed_later = await create(
            client, start_time=clock.now() + timedelta(minutes=1)
        )
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(pushed_later.id))
        ]
