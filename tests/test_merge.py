# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Merge strategies applied to running-state events with overlapping windows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import pytest
from frequenz.channels import Receiver
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import TargetIds
from frequenz.sdk.actor import Actor
from typing_extensions import override

from frequenz.dispatch import (
    Dispatch,
    DispatchActorId,
    Dispatcher,
    DispatchInfo,
    MergeByType,
    MergeByTypeTarget,
    MergeStrategy,
)
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import FakeClock, Recorder, settle

from .conftest import START
from .helpers import ApiClientFactory, create, delete, drain, make_dispatch, update

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
    receiver = Recorder(
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
    by_group = Recorder(
        scheduler.new_running_state_event_receiver(
            "TEST", merge_strategy=MergeByGroup()
        )
    )
    only_starts = Recorder(
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


# The dry-run flag is part of every built-in identity (issue 8, item 3): a live
# dispatch and its overlapping dry-run twin never share an actor.


@pytest.mark.parametrize("strategy", [MergeByType(), MergeByTypeTarget()])
async def test_a_live_and_a_dry_run_twin_each_get_their_own_start_and_stop(
    clock: FakeClock,
    client: FakeClient,
    scheduler: DispatchScheduler,
    strategy: MergeStrategy,
) -> None:
    receiver = Recorder(
        scheduler.new_running_state_event_receiver("TEST", merge_strategy=strategy)
    )
    # Whichever arrives first, neither may swallow the other.
    dry = await create(
        client, start_time=START + MINUTE, duration=10 * MINUTE, dry_run=True
    )
    live = await create(
        client, start_time=START + 2 * MINUTE, duration=20 * MINUTE, dry_run=False
    )
    await clock.advance(30 * MINUTE)
    assert [(d.id, d.started, d.dry_run) for d in receiver.take()] == [
        (dry.id, True, True),
        (live.id, True, False),
        (dry.id, False, True),
        (live.id, False, False),
    ]
    assert strategy.identity(Dispatch(dry)) != strategy.identity(Dispatch(live))


def test_builtin_identities_are_type_dry_run_and_target() -> None:
    base = make_dispatch(1, start_time=START, target=TargetIds(1))
    same = make_dispatch(2, start_time=START, target=TargetIds(1))
    dry = make_dispatch(3, start_time=START, target=TargetIds(1), dry_run=True)
    other_target = make_dispatch(4, start_time=START, target=TargetIds(2))
    other_type = make_dispatch(5, start_time=START, target=TargetIds(1), type="X")
    by_type, by_target = MergeByType(), MergeByTypeTarget()
    key = {
        name: (by_type.identity(Dispatch(d)), by_target.identity(Dispatch(d)))
        for name, d in [
            ("base", base),
            ("same", same),
            ("dry", dry),
            ("other_target", other_target),
            ("other_type", other_type),
        ]
    }
    assert key["same"] == key["base"]
    assert key["dry"][0] != key["base"][0] and key["dry"][1] != key["base"][1]
    assert key["other_target"][0] == key["base"][0]
    assert key["other_target"][1] != key["base"][1]
    assert key["other_type"][0] != key["base"][0]
    assert all(
        isinstance(ident, DispatchActorId) for pair in key.values() for ident in pair
    )


class _Actor(Actor):
    """Records its configuration and whether it was stopped."""

    def __init__(self, info: DispatchInfo, updates: Receiver[DispatchInfo]) -> None:
        super().__init__(name=f"actor-{info.options['n']}")
        self.info = info
        self.updates = updates
        self.stopped_at: datetime | None = None

    @override
    async def _run(self) -> None:
        try:
            async for info in self.updates:
                self.info = info
        finally:
            self.stopped_at = datetime.now(tz=timezone.utc)


@pytest.mark.parametrize("strategy", [MergeByType(), MergeByTypeTarget()])
async def test_start_managing_gives_the_live_dispatch_its_own_live_actor(
    clock: FakeClock, api: ApiClientFactory, strategy: MergeStrategy
) -> None:
    actors: list[_Actor] = []

    async def factory(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
        actor = _Actor(info, updates)
        actors.append(actor)
        return actor

    async with Dispatcher(
        microgrid_id=1, server_url="grpc://dispatch.example.com:1", auth_key="k"
    ) as dispatcher:
        await dispatcher.start_managing(
            "TEST", actor_factory=factory, merge_strategy=strategy
        )
        await create(
            api.client,
            start_time=START + MINUTE,
            duration=10 * MINUTE,
            dry_run=True,
            payload={"n": "dry"},
        )
        await create(
            api.client,
            start_time=START + 2 * MINUTE,
            duration=20 * MINUTE,
            dry_run=False,
            payload={"n": "live"},
        )
        await clock.advance(3 * MINUTE)
        by_name = {actor.info.options["n"]: actor for actor in actors}
        assert sorted(by_name) == ["dry", "live"]
        assert by_name["live"].info.dry_run is False
        assert by_name["dry"].info.dry_run is True
        assert [a.is_running for a in actors] == [True, True]

        # Each gets its own stop, at its own end.
        await clock.advance_to(START + 12 * MINUTE)
        assert by_name["dry"].stopped_at == START + 11 * MINUTE
        assert by_name["live"].is_running
        await clock.advance_to(START + 23 * MINUTE)
        assert by_name["live"].stopped_at == START + 22 * MINUTE
        assert len(actors) == 2
