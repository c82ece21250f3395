# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Code written for frequenz-dispatch 1.0.4 runs here unchanged.

One test per item of the comparison table in docs/migration.md. Each test uses
the item the way 1.0.x code does (its import path, its keyword names) and checks
that it means the same here.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from frequenz.channels import BroadcastChannel, Receiver, ReceiverStoppedError
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import DispatchId, TargetIds
from frequenz.sdk.actor import Actor, BackgroundService
from typing_extensions import override

from frequenz.dispatch import Dispatch, Dispatcher, DispatchInfo
from frequenz.dispatch._actor_dispatcher import ActorDispatcher, DispatchActorId
from frequenz.dispatch._bg_service import DispatchScheduler, MergeStrategy
from frequenz.dispatch._merge_strategies import MergeByType, MergeByTypeTarget
from frequenz.dispatch.testing import FakeClock, Recorder

from .conftest import START
from .helpers import MICROGRID, ApiClientFactory, create, make_dispatch

pytestmark = pytest.mark.filterwarnings(
    # frequenz-channels 1.12's BroadcastChannel builds the Broadcast it deprecates.
    "ignore:Please use BroadcastChannel instead:DeprecationWarning"
)

MINUTE = timedelta(minutes=1)
URL = "grpc://dispatch.example.com:50051"

TOP_LEVEL_1_0_4 = [
    "Created",
    "Deleted",
    "DispatchEvent",
    "Dispatcher",
    "Updated",
    "Dispatch",
    "ActorDispatcher",
    "DispatchInfo",
    "MergeStrategy",
    "MergeByType",
    "MergeByTypeTarget",
]
"""frequenz.dispatch.__all__ of 1.0.4."""

MODULE_PATHS_1_0_4 = [
    ("frequenz.dispatch._actor_dispatcher", "ActorDispatcher"),
    ("frequenz.dispatch._actor_dispatcher", "DispatchActorId"),
    ("frequenz.dispatch._actor_dispatcher", "DispatchInfo"),
    ("frequenz.dispatch._bg_service", "DispatchScheduler"),
    ("frequenz.dispatch._bg_service", "MergeStrategy"),
    ("frequenz.dispatch._dispatch", "Dispatch"),
    ("frequenz.dispatch._dispatcher", "Dispatcher"),
    ("frequenz.dispatch._event", "Created"),
    ("frequenz.dispatch._event", "Updated"),
    ("frequenz.dispatch._event", "Deleted"),
    ("frequenz.dispatch._event", "DispatchEvent"),
    ("frequenz.dispatch._merge_strategies", "MergeByType"),
    ("frequenz.dispatch._merge_strategies", "MergeByTypeTarget"),
]
"""The private module paths 1.0.x code and tests import from."""


def params(function: Any) -> list[tuple[str, str]]:
    """Return (name, kind) of a callable's parameters, without `self`."""
    return [
        (p.name, p.kind.name)
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]


def running_dispatch(number: int, **fields: Any) -> Dispatch:
    """Return a dispatch that runs at START."""
    return Dispatch(make_dispatch(number, start_time=START - MINUTE, **fields))


# Names and module paths


@pytest.mark.parametrize("name", TOP_LEVEL_1_0_4)
def test_every_top_level_name_of_1_0_4_is_exported(name: str) -> None:
    module = importlib.import_module("frequenz.dispatch")
    assert name in module.__all__
    assert getattr(module, name) is not None


@pytest.mark.parametrize(("module_name", "name"), MODULE_PATHS_1_0_4)
def test_every_module_path_of_1_0_4_imports_the_public_object(
    module_name: str, name: str
) -> None:
    public = importlib.import_module("frequenz.dispatch")
    private = importlib.import_module(module_name)
    exported = getattr(private, name)
    # DispatchScheduler is not exported at the top level, in 1.0.4 either.
    assert exported is getattr(public, name, exported)


# DispatchActorId


def test_dispatch_actor_id_is_built_from_an_int_or_a_dispatch_id() -> None:
    assert DispatchActorId(7) == DispatchActorId(DispatchId(7))
    assert int(DispatchActorId(7)) == 7
    assert str(DispatchActorId(7)) == "DA7"
    assert DispatchActorId(7) != DispatchActorId(8)
    assert len({DispatchActorId(7), DispatchActorId(7)}) == 1
    with pytest.raises(ValueError, match="negative"):
        DispatchActorId(-1)
    with pytest.raises(TypeError, match="DispatchActorId"):
        DispatchActorId("7")  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", [MergeByType(), MergeByTypeTarget()])
def test_identity_returns_a_dispatch_actor_id(strategy: MergeStrategy) -> None:
    identity = strategy.identity(running_dispatch(1))
    assert isinstance(identity, DispatchActorId)
    assert identity == strategy.identity(running_dispatch(2))


class ByPayloadGroup(MergeByType):
    """A 1.0.x-style user strategy: identity is a DispatchActorId it builds."""

    @override
    def identity(self, dispatch: Dispatch) -> DispatchActorId:
        return DispatchActorId(int(dispatch.payload["group"]))


class ByPayloadGroupInt(MergeByType):
    """A seeds-style user strategy: identity is a plain int."""

    @override
    def identity(self, dispatch: Dispatch) -> int:
        return int(dispatch.payload["group"])


@pytest.mark.parametrize("strategy", [ByPayloadGroup(), ByPayloadGroupInt()])
async def test_user_identities_as_actor_id_or_int_both_merge(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler, strategy: Any
) -> None:
    receiver = Recorder(
        scheduler.new_running_state_event_receiver("TEST", merge_strategy=strategy)
    )
    first = await create(
        client, start_time=START + MINUTE, duration=10 * MINUTE, payload={"group": 1}
    )
    second = await create(
        client,
        start_time=START + 2 * MINUTE,
        duration=20 * MINUTE,
        payload={"group": 1},
    )
    await clock.advance(30 * MINUTE)
    # The first one's stop is held back: both share the group's identity.
    assert [(d.id, d.started) for d in receiver.take()] == [
        (first.id, True),
        (second.id, True),
        (second.id, False),
    ]


# MergeStrategy.filter


async def test_filter_gets_a_mapping_keyed_by_dispatch_id(
    clock: FakeClock, client: FakeClient, scheduler: DispatchScheduler
) -> None:
    seen: list[Mapping[DispatchId, Dispatch]] = []

    class Recording(MergeByType):
        @override
        def filter(
            self, dispatches: Mapping[DispatchId, Dispatch], dispatch: Dispatch
        ) -> bool:
            seen.append(dict(dispatches))
            return super().filter(dispatches, dispatch)

    receiver = scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=Recording()
    )
    created = await create(client, start_time=START + MINUTE)
    await clock.advance(2 * MINUTE)
    assert seen
    assert all(isinstance(key, DispatchId) for each in seen for key in each)
    assert seen[-1] == {created.id: seen[-1][created.id]}
    assert all(isinstance(value, Dispatch) for each in seen for value in each.values())
    assert (await receiver.receive()).id == created.id


# DispatchInfo


def test_dispatch_info_target_and_components_are_the_same_field() -> None:
    source = running_dispatch(1, target=TargetIds(3))
    info = DispatchInfo(
        target=TargetIds(3), dry_run=True, options={"a": 1}, _src=source
    )
    assert info.target == TargetIds(3)
    assert info.components == info.target
    assert (info.dry_run, info.options, info._src) == (True, {"a": 1}, source)
    seeds_style = DispatchInfo(components=TargetIds(3), dry_run=True, options={"a": 1})
    assert seeds_style.target == TargetIds(3)
    # Equal whether built with target or components, with or without _src.
    assert seeds_style == info
    assert dataclasses.replace(info, dry_run=False).target == TargetIds(3)
    with dataclasses_frozen():
        info.target = TargetIds(4)  # type: ignore[misc]


def test_dispatch_info_needs_exactly_one_of_target_and_components() -> None:
    with pytest.raises(ValueError, match="target or components"):
        DispatchInfo(
            target=TargetIds(1), components=TargetIds(1), dry_run=False, options={}
        )
    with pytest.raises(ValueError, match="target"):
        DispatchInfo(dry_run=False, options={})


def dataclasses_frozen() -> Any:
    """Expect assigning to a frozen dataclass to fail."""
    return pytest.raises(dataclasses.FrozenInstanceError)


# ActorDispatcher


def test_actor_dispatcher_arguments_are_those_of_1_0_4() -> None:
    assert params(ActorDispatcher.__init__) == [
        ("actor_factory", "POSITIONAL_OR_KEYWORD"),
        ("running_status_receiver", "POSITIONAL_OR_KEYWORD"),
        ("dispatch_identity", "POSITIONAL_OR_KEYWORD"),
        ("retry_interval", "POSITIONAL_OR_KEYWORD"),
    ]
    signature = inspect.signature(ActorDispatcher.__init__)
    assert signature.parameters["dispatch_identity"].default is None
    assert signature.parameters["retry_interval"].default == timedelta(seconds=60)
    assert issubclass(ActorDispatcher, BackgroundService)


class _Actor(Actor):
    def __init__(self, info: DispatchInfo, updates: Receiver[DispatchInfo]) -> None:
        super().__init__()
        self.info = info
        self.updates = updates

    @override
    async def _run(self) -> None:
        async for info in self.updates:
            self.info = info


async def test_actor_dispatcher_gives_the_factory_target_and_identity_by_id(
    clock: FakeClock,
) -> None:
    del clock
    actors: list[_Actor] = []
    identities: list[DispatchActorId] = []

    async def factory(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> _Actor:
        actors.append(_Actor(info, updates))
        return actors[-1]

    def identity(dispatch: Dispatch) -> DispatchActorId:
        identities.append(DispatchActorId(dispatch.id))
        return identities[-1]

    sender, receiver = BroadcastChannel[Dispatch](name="running", limit=10)
    service = ActorDispatcher(
        actor_factory=factory,
        running_status_receiver=receiver,
        dispatch_identity=identity,
        retry_interval=timedelta(seconds=5),
    )
    service.start()
    dispatch = running_dispatch(4, target=TargetIds(9), payload={"p": 1})
    window = dispatch.window_at(START)
    await sender.send(dispatch.with_running_state(window))
    for _ in range(20):
        await asyncio_sleep0()
    [actor] = actors
    assert actor.info.target == TargetIds(9)
    assert actor.info.components == TargetIds(9)
    assert actor.info.options == {"p": 1}
    assert actor.info._src is not None and actor.info._src.id == dispatch.id
    assert identities == [DispatchActorId(4)]
    await service.stop()


async def asyncio_sleep0() -> None:
    """Let other tasks run once."""
    import asyncio

    await asyncio.sleep(0)


# Dispatcher


def test_dispatcher_constructor_arguments_are_those_of_1_0_4() -> None:
    # 1.0.4's arguments, in its order; ours may add optional keyword-only ones
    # after them (`clock`, `client`, the cache options), which 1.0.x code never passes.
    ours = params(Dispatcher.__init__)
    assert ours[:7] == [
        ("microgrid_id", "KEYWORD_ONLY"),
        ("server_url", "KEYWORD_ONLY"),
        ("key", "KEYWORD_ONLY"),
        ("auth_key", "KEYWORD_ONLY"),
        ("sign_secret", "KEYWORD_ONLY"),
        ("call_timeout", "KEYWORD_ONLY"),
        ("stream_timeout", "KEYWORD_ONLY"),
    ]
    extra = list(inspect.signature(Dispatcher.__init__).parameters.values())[8:]
    assert {"clock", "client", "cache_file"} <= {p.name for p in extra}
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in extra)


async def test_dispatcher_auth_key_and_sign_secret_reach_the_client(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    del clock
    async with Dispatcher(
        microgrid_id=MicrogridId(1),
        server_url=URL,
        auth_key="secret",
        sign_secret="signing",
        call_timeout=timedelta(seconds=5),
        stream_timeout=timedelta(minutes=2),
    ):
        pass
    [call] = api.calls
    assert call["auth_key"] == "secret"
    assert call["sign_secret"] == "signing"
    assert call["call_timeout"] == timedelta(seconds=5)
    assert call["stream_timeout"] == timedelta(minutes=2)


def test_dispatcher_rejects_key_and_auth_key_that_disagree() -> None:
    with pytest.raises(ValueError, match="auth_key"):
        Dispatcher(microgrid_id=1, server_url=URL, key="a", auth_key="b")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("is_managed", [("dispatch_type", "POSITIONAL_OR_KEYWORD")]),
        (
            "start_managing",
            [
                ("dispatch_type", "POSITIONAL_OR_KEYWORD"),
                ("actor_factory", "KEYWORD_ONLY"),
                ("merge_strategy", "KEYWORD_ONLY"),
                ("retry_interval", "KEYWORD_ONLY"),
            ],
        ),
        ("stop_managing", [("dispatch_type", "POSITIONAL_OR_KEYWORD")]),
        ("new_lifecycle_events_receiver", [("dispatch_type", "POSITIONAL_OR_KEYWORD")]),
        (
            "new_running_state_event_receiver",
            [
                ("dispatch_type", "POSITIONAL_OR_KEYWORD"),
                ("merge_strategy", "KEYWORD_ONLY"),
            ],
        ),
        ("cancel", [("msg", "POSITIONAL_OR_KEYWORD")]),
    ],
)
def test_dispatcher_method_parameters_are_those_of_1_0_4(
    method: str, expected: list[tuple[str, str]]
) -> None:
    assert params(getattr(Dispatcher, method)) == expected


async def test_dispatcher_methods_used_as_1_0_x_code_does(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    actors: list[_Actor] = []

    async def factory(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> _Actor:
        actors.append(_Actor(info, updates))
        return actors[-1]

    dispatcher = Dispatcher(microgrid_id=MicrogridId(1), server_url=URL, auth_key="k")
    async with dispatcher:
        assert dispatcher.is_running
        await dispatcher.wait_for_initialization()
        receiver = await dispatcher.new_running_state_event_receiver(
            dispatch_type="TEST", merge_strategy=MergeByType()
        )
        lifecycle = dispatcher.new_lifecycle_events_receiver(dispatch_type="TEST")
        await dispatcher.start_managing(
            dispatch_type="TEST",
            actor_factory=factory,
            merge_strategy=MergeByTypeTarget(),
            retry_interval=timedelta(seconds=10),
        )
        assert dispatcher.is_managed(dispatch_type="TEST")
        created = await dispatcher.client.create(
            microgrid_id=MICROGRID,
            type="TEST",
            start_time=START + MINUTE,
            duration=10 * MINUTE,
            target=TargetIds(1),
            active=True,
            dry_run=False,
            payload={},
            recurrence=None,
        )
        await clock.advance(2 * MINUTE)
        assert (await lifecycle.receive()).dispatch.id == created.id
        message = await receiver.receive()
        assert (message.id, message.started) == (created.id, True)
        assert len(actors) == 1 and actors[0].is_running
        await dispatcher.stop_managing(dispatch_type="TEST")
        assert not dispatcher.is_managed("TEST")
        assert not actors[0].is_running
    assert not dispatcher.is_running


# Dispatch


DISPATCH_MEMBERS_1_0_4 = [
    # frequenz-client-dispatch 1.1.1's Dispatch fields, inherited in 1.0.4.
    "id",
    "type",
    "start_time",
    "duration",
    "target",
    "active",
    "dry_run",
    "payload",
    "recurrence",
    "create_time",
    "update_time",
    "end_time",
    # 1.0.4's additions and overrides.
    "deleted",
    "started",
    "started_at",
    "until",
    "next_run",
    "next_run_after",
    "missed_runs",
]


@pytest.mark.parametrize("member", DISPATCH_MEMBERS_1_0_4)
def test_every_dispatch_member_of_1_0_4_exists(member: str) -> None:
    dispatch = running_dispatch(1)
    assert hasattr(dispatch, member)


async def test_dispatch_members_mean_what_they_mean_in_1_0_4(clock: FakeClock) -> None:
    source = make_dispatch(1, start_time=clock.now() - MINUTE, duration=10 * MINUTE)
    dispatch = Dispatch(source, deleted=False)
    assert dispatch.started
    assert dispatch.started_at(clock.now() + 20 * MINUTE) is False
    assert dispatch.until == clock.now() + 9 * MINUTE
    assert dispatch.next_run is None  # it started a minute ago, and recurs not
    assert dispatch.next_run_after(clock.now() - 2 * MINUTE) == clock.now() - MINUTE
    assert list(dispatch.missed_runs(clock.now() - 2 * MINUTE)) == [
        clock.now() - MINUTE
    ]
    deleted = Dispatch(source, deleted=True)
    assert deleted.deleted and not deleted.started
    assert params(Dispatch.__init__) == [
        ("client_dispatch", "POSITIONAL_OR_KEYWORD"),
        ("deleted", "POSITIONAL_OR_KEYWORD"),
    ]


# DispatchScheduler


async def test_dispatch_scheduler_is_built_and_used_as_in_1_0_4(
    clock: FakeClock, client: FakeClient
) -> None:
    scheduler = DispatchScheduler(MICROGRID, client)
    scheduler.start()
    await scheduler.wait_for_initialization()
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    running = await scheduler.new_running_state_event_receiver(
        "TEST", merge_strategy=MergeByType()
    )
    created = await create(client, start_time=START + MINUTE)
    await clock.advance(2 * MINUTE)
    assert (await lifecycle.receive()).dispatch.id == created.id
    assert (await running.receive()).started
    await scheduler.stop()


# Deliberate differences (docs/migration.md says what and why)


async def test_difference_receivers_end_when_the_service_stops(
    clock: FakeClock, client: FakeClient
) -> None:
    del clock
    scheduler = DispatchScheduler(MICROGRID, client)
    scheduler.start()
    await scheduler.wait_for_initialization()
    running = scheduler.new_running_state_event_receiver("TEST")
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    await scheduler.stop()
    # 1.0.4 leaves them open: an `async for` over them never ends.
    with pytest.raises(ReceiverStoppedError):
        await running.receive()
    with pytest.raises(ReceiverStoppedError):
        await lifecycle.receive()


async def test_difference_finished_dispatches_are_reported_at_start_up(
    clock: FakeClock, client: FakeClient
) -> None:
    finished = make_dispatch(1, start_time=clock.now() - 2 * MINUTE, duration=MINUTE)
    client.set_dispatches(MICROGRID, [finished])
    scheduler = DispatchScheduler(MICROGRID, client)
    lifecycle = scheduler.new_lifecycle_events_receiver("TEST")
    running = scheduler.new_running_state_event_receiver("TEST")
    scheduler.start()
    await scheduler.wait_for_initialization()
    # 1.0.4 lists only what ended at most 5 s ago, so it never reports this one.
    event = await lifecycle.receive()
    assert (type(event).__name__, event.dispatch.id) == ("Created", finished.id)
    assert not running.pending  # it does not run, so no running-state event
    await scheduler.stop()
