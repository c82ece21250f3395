# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Merge strategies applied to running-state events with overlapping windows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import TargetIds
from typing_extensions import override

from frequenz.dispatch import Dispatch, MergeByType, MergeByTypeTarget, MergeStrategy
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import FakeClock

from .conftest import START
from .helpers import Collector, create, delete, drain, settle, update

MINUTE = timedelta(minutes=1)


async def test_merge_by_type_holds_back_the_stop_while_another_runs(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=MergeByType()
    )
    first = await create(client, start_time=START + MINUTE, duration=10 * MINUTE)
    second = await create(client, start_time=START + 5 * MINUTE, duration=10 * MINUTE)
    await clock.advance(20 * MINUTE)
    assert [(d.id, d.started) for d in drain(receiver)] == [
        (first.id, True),
        (second.id, True),
        (second.id, False),
    ]


async def test_when_the_current_dispatch_ends_the_one_still_running_is_resent(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = Collector(
        scheduler.new_running_state_event_receiver("TEST", merge_strategy=MergeByType())
    )
    long = await create(
        client, start_time=START + MINUTE, duration=30 * MINUTE, payload={"p": 1}
    )
    short = await create(
        client, start_time=START + 5 * MINUTE, duration=5 * MINUTE, payload={"p": 2}
    )
    await clock.advance(40 * MINUTE)
    assert [(d.id, d.started, d.payload) for d in receiver.take()] == [
        (long.id, True, {"p": 1}),
        (short.id, True, {"p": 2}),
        # The short one ends: the consumer must go back to the long one's
        # configuration rather than keep the ended one's payload.
        (long.id, True, {"p": 1}),
        (long.id, False, {"p": 1}),
    ]


async def test_deleting_the_current_dispatch_resends_the_one_still_running(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=MergeByType()
    )
    first = await create(client, start_time=START + MINUTE, duration=None)
    second = await create(client, start_time=START + 2 * MINUTE, duration=None)
    await clock.advance(3 * MINUTE)
    drain(receiver)
    await delete(client, second.id)
    await settle()
    assert [(d.id, d.started) for d in drain(receiver)] == [(first.id, True)]


async def test_merge_by_type_target_keeps_targets_apart(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=MergeByTypeTarget()
    )
    one = await create(
        client, start_time=START + MINUTE, duration=10 * MINUTE, target=TargetIds(1)
    )
    two = await create(
        client, start_time=START + 2 * MINUTE, duration=20 * MINUTE, target=TargetIds(2)
    )
    one_again = await create(
        client, start_time=START + 3 * MINUTE, duration=20 * MINUTE, target=TargetIds(1)
    )
    await clock.advance(30 * MINUTE)
    assert [(d.id, d.started) for d in drain(receiver)] == [
        (one.id, True),
        (two.id, True),
        (one_again.id, True),
        # `one` ends while `one_again` (same target) runs: held back.
        (two.id, False),
        (one_again.id, False),
    ]


async def test_a_target_change_stops_the_old_targets_identity(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    strategy = MergeByTypeTarget()
    receiver = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=strategy
    )
    moving = await create(
        client, start_time=START + MINUTE, duration=None, target=TargetIds(1)
    )
    await clock.advance(2 * MINUTE)
    drain(receiver)

    await update(client, moving.id, target=TargetIds(2))
    await settle()
    stop, start = drain(receiver)
    # The actor of target 1 must be stopped, or it would be orphaned.
    assert (stop.started, stop.target) == (False, TargetIds(1))
    assert (start.started, start.target) == (True, TargetIds(2))
    assert strategy.identity(stop) != strategy.identity(start)


async def test_without_strategy_every_event_passes(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    receiver = scheduler.new_running_state_event_receiver("TEST")
    first = await create(client, start_time=START + MINUTE, duration=10 * MINUTE)
    second = await create(client, start_time=START + 5 * MINUTE, duration=10 * MINUTE)
    await clock.advance(20 * MINUTE)
    assert [(d.id, d.started) for d in drain(receiver)] == [
        (first.id, True),
        (second.id, True),
        (first.id, False),
        (second.id, False),
    ]


class MergeByGroup(MergeByType):
    """A user strategy: dispatches with the same payload group share an actor."""

    @override
    def identity(self, dispatch: Dispatch) -> int:
        return hash((dispatch.type, dispatch.payload.get("group")))


class OnlyStarts(MergeStrategy):
    """A user strategy written from scratch: never lets a stop through."""

    @override
    def identity(self, dispatch: Dispatch) -> int:
        return hash(dispatch.type)

    @override
    def filter(self, dispatches: Mapping[int, Dispatch], dispatch: Dispatch) -> bool:
        return dispatch.started


async def test_user_subclasses_decide_identity_and_filtering(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    by_group = Collector(
        scheduler.new_running_state_event_receiver(
            "TEST", merge_strategy=MergeByGroup()
        )
    )
    only_starts = Collector(
        scheduler.new_running_state_event_receiver("TEST", merge_strategy=OnlyStarts())
    )
    a1 = await create(
        client, start_time=START + MINUTE, duration=10 * MINUTE, payload={"group": "a"}
    )
    a2 = await create(
        client,
        start_time=START + 2 * MINUTE,
        duration=20 * MINUTE,
        payload={"group": "a"},
    )
    b = await create(
        client,
        start_time=START + 3 * MINUTE,
        duration=5 * MINUTE,
        payload={"group": "b"},
    )
    await clock.advance(30 * MINUTE)
    assert [(d.id, d.started) for d in by_group.take()] == [
        (a1.id, True),
        (a2.id, True),
        (b.id, True),
        (b.id, False),
        (a2.id, False),
    ]
    assert [(d.id, d.started) for d in only_starts.take()] == [
        (a1.id, True),
        (a2.id, True),
        (b.id, True),
        # b was the last delivered: when it ends, a2 still runs and is resent.
        (a2.id, True),
    ]


def test_the_filter_gets_only_the_identitys_running_dispatches() -> None:
    seen: list[int] = []

    class Recording(MergeByType):
        @override
        def filter(
            self, dispatches: Mapping[int, Dispatch], dispatch: Dispatch
        ) -> bool:
            seen.append(len(dispatches))
            return super().filter(dispatches, dispatch)

    from frequenz.dispatch._running_state import MergeTracker

    from .helpers import make_dispatch

    tracker = MergeTracker(Recording())
    for number in range(1, 1001):
        dispatch = Dispatch(make_dispatch(number, start_time=START, type=f"T{number}"))
        window = dispatch.window_at(START)
        list(tracker.process(dispatch.with_running_state(window)))
    # 1000 dispatches of different types: each decision saw one dispatch, not all.
    assert max(seen) == 1
