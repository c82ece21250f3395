# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Tests of the `Dispatcher` facade, built through its public constructor.

`Dispatcher` builds a real `DispatchApiClient` from `server_url` and `key`; the
`api` fixture replaces that class in `frequenz.dispatch._dispatcher` with a factory
that records its arguments and returns a `FakeClient`.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from frequenz.channels import ReceiverStoppedError
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.microgrid.components import ComponentCategory
from frequenz.client.dispatch.types import TargetCategories, TargetIds

from frequenz.dispatch import (
    Created,
    Deleted,
    Dispatch,
    Dispatcher,
    MergeByType,
    Updated,
)
from frequenz.dispatch.testing import FakeClock, settle

from .helpers import ApiClientFactory, create, drain, make_dispatch
from .test_actor_dispatcher import Factory

URL = "grpc://dispatch.example.com:50051"
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def dispatcher(
    clock: FakeClock, api: ApiClientFactory
) -> AsyncIterator[Dispatcher]:
    """A started dispatcher on microgrid 1, after its first sync."""
    del clock
    async with Dispatcher(microgrid_id=1, server_url=URL, key="secret") as d:
        yield d


def running_now(dispatch_id: int, clock: FakeClock, *, type: str = "A") -> Any:
    """Return a client dispatch that started a minute ago and runs for 10 minutes."""
    return make_dispatch(
        dispatch_id,
        start_time=clock.now() - MINUTE,
        type=type,
        payload={"id": dispatch_id},
    )


def ids(messages: list[Dispatch]) -> list[tuple[int, bool]]:
    """Return (dispatch id, started) of running-state messages."""
    return [(int(m.id), m.started) for m in messages]


async def wait_for(dispatcher: Dispatcher) -> None:
    """Await the dispatcher itself."""
    await dispatcher


# Constructor


@pytest.mark.parametrize("microgrid_id", [1, MicrogridId(1)])
async def test_plain_int_or_microgrid_id_accepted(
    clock: FakeClock, api: ApiClientFactory, microgrid_id: Any
) -> None:
    api.client.set_dispatches(MicrogridId(1), [running_now(1, clock)])
    api.client.set_dispatches(MicrogridId(2), [running_now(2, clock)])
    async with Dispatcher(microgrid_id=microgrid_id, server_url=URL, key="k") as d:
        receiver = d.new_running_state_event_receiver("A")
        assert ids(drain(receiver)) == [(1, True)]
    assert len(api.calls) == 1
    assert api.calls[0]["server_url"] == URL


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"key": "k1"}, "k1"),
        ({"auth_key": "k2"}, "k2"),
        ({"key": "k3", "auth_key": "k3"}, "k3"),
    ],
)
async def test_key_or_auth_key_reaches_client(
    api: ApiClientFactory, kwargs: dict[str, Any], expected: str
) -> None:
    Dispatcher(microgrid_id=1, server_url=URL, **kwargs)
    [call] = api.calls
    assert call["server_url"] == URL
    given = {call.get("auth_key"), call.get("key")} - {None}
    assert given == {expected}


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({}, TypeError, "key"),
        ({"key": ""}, TypeError, "key"),
        ({"key": 123}, TypeError, "key"),
        ({"key": "a", "auth_key": "b"}, ValueError, "key"),
        ({"key": "a", "microgrid_id": "1"}, TypeError, "microgrid_id"),
        ({"key": "a", "microgrid_id": 1.5}, TypeError, "microgrid_id"),
        ({"key": "a", "server_url": None}, TypeError, "server_url"),
    ],
)
async def test_bad_constructor_arguments(
    api: ApiClientFactory,
    kwargs: dict[str, Any],
    error: type[Exception],
    argument: str,
) -> None:
    arguments: dict[str, Any] = {"microgrid_id": 1, "server_url": URL}
    arguments.update(kwargs)
    with pytest.raises(error, match=argument):
        Dispatcher(**arguments)


# Lifetime


async def test_async_with_returns_after_first_sync(
    clock: FakeClock, api: ApiClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.client.set_dispatches(MicrogridId(1), [running_now(1, clock)])
    stub = api.client.stub
    original_list = stub.ListMicrogridDispatches

    async def slow_list(request: Any, timeout: Any = None) -> Any:
        await asyncio.sleep(30)
        return await original_list(request, timeout=timeout)

    monkeypatch.setattr(stub, "ListMicrogridDispatches", slow_list)
    t0 = clock.now()
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        assert clock.now() - t0 >= timedelta(seconds=30)
        assert d.is_running
        # The first sync is done: the running dispatch is known right away.
        assert ids(drain(d.new_running_state_event_receiver("A"))) == [(1, True)]
    assert not d.is_running


async def test_leaving_async_with_stops_everything(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    api.client.set_dispatches(
        MicrogridId(1), [running_now(1, clock), running_now(2, clock, type="B")]
    )
    factory_a = Factory()
    factory_b = Factory()
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        await d.start_managing("A", actor_factory=factory_a)
        await d.start_managing("B", actor_factory=factory_b)
        receiver = d.new_running_state_event_receiver("A")
        await settle()
        assert factory_a.running() == [1]
        assert factory_b.running() == [2]
        assert d.is_running

    assert not d.is_running
    assert not d.is_managed("A")
    assert not d.is_managed("B")
    assert factory_a.running() == []
    assert factory_b.running() == []
    assert all(a.stopped for a in factory_a.actors + factory_b.actors)
    assert ids(drain(receiver)) == [(1, True)]
    with pytest.raises(ReceiverStoppedError):
        await receiver.receive()


async def test_start_stop_without_context_manager(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    api.client.set_dispatches(MicrogridId(1), [running_now(1, clock)])
    d = Dispatcher(microgrid_id=1, server_url=URL, key="k")
    assert not d.is_running
    d.start()
    await d.wait_for_initialization()
    assert d.is_running
    assert ids(drain(d.new_running_state_event_receiver("A"))) == [(1, True)]
    await d.stop()
    assert not d.is_running


# The client


async def create_with(dispatcher: Dispatcher, clock: FakeClock, target: Any) -> Any:
    """Create a dispatch of type A through `dispatcher.client`, with plain ids."""
    return await dispatcher.client.create(
        microgrid_id=1,
        type="A",
        start_time=clock.now() + timedelta(hours=1),
        duration=timedelta(minutes=5),
        target=target,
    )


async def test_client_accepts_plain_ids_and_category_targets(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    client = dispatcher.client
    by_category = await create_with(dispatcher, clock, ComponentCategory.BATTERY)
    assert by_category.target == TargetCategories(ComponentCategory.BATTERY)
    by_categories = await create_with(
        dispatcher, clock, [ComponentCategory.BATTERY, ComponentCategory.INVERTER]
    )
    assert by_categories.target == TargetCategories(
        ComponentCategory.BATTERY, ComponentCategory.INVERTER
    )
    by_id = await create_with(dispatcher, clock, 7)
    assert by_id.target == TargetIds(7)
    by_ids = await create_with(dispatcher, clock, TargetIds(1, 2))
    assert by_ids.target == TargetIds(1, 2)

    updated = await client.update(
        microgrid_id=1,
        dispatch_id=int(by_ids.id),
        new_fields={"target": ComponentCategory.INVERTER, "duration": 2 * MINUTE},
    )
    assert updated.target == TargetCategories(ComponentCategory.INVERTER)
    assert updated.duration == 2 * MINUTE

    fetched = await client.get(microgrid_id=1, dispatch_id=int(by_ids.id))
    assert fetched.id == by_ids.id
    assert fetched.target == TargetCategories(ComponentCategory.INVERTER)

    listed = [d.id async for page in client.list(1) for d in page]
    assert sorted(listed) == sorted(
        d.id for d in (by_category, by_categories, by_ids, by_id)
    )

    await client.delete(microgrid_id=1, dispatch_id=int(by_id.id))
    listed = [d.id async for page in client.list(1) for d in page]
    assert by_id.id not in listed
    assert len(listed) == 3


async def test_client_accepts_list_of_ids_as_target(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    by_ids = await create_with(dispatcher, clock, [1, 2, 3])
    assert by_ids.target == TargetIds(1, 2, 3)
    updated = await dispatcher.client.update(
        microgrid_id=1, dispatch_id=int(by_ids.id), new_fields={"target": [4, 5]}
    )
    assert updated.target == TargetIds(4, 5)


async def test_client_rejects_mixed_target(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    with pytest.raises(TypeError, match="target"):
        await create_with(dispatcher, clock, [1, ComponentCategory.BATTERY])
    with pytest.raises(TypeError, match="target"):
        await create_with(dispatcher, clock, [ComponentCategory.BATTERY, 1])
    created = await create_with(dispatcher, clock, TargetIds(1))
    with pytest.raises(TypeError, match="target"):
        await dispatcher.client.update(
            microgrid_id=1,
            dispatch_id=int(created.id),
            new_fields={"target": [ComponentCategory.BATTERY, 2]},
        )
    listed = [d async for page in dispatcher.client.list(1) for d in page]
    assert [(d.id, d.target) for d in listed] == [(created.id, TargetIds(1))]


async def test_client_forwards_other_attributes(
    dispatcher: Dispatcher, api: ApiClientFactory
) -> None:
    client: Any = dispatcher.client
    assert client.stub is api.client.stub
    assert client.server_url == api.client.server_url
    # A FakeClient-only method reaches the wrapped client.
    assert client.dispatches(MicrogridId(1)) == []
    with pytest.raises(AttributeError):
        _ = client.no_such_attribute


async def test_client_creates_reach_receivers(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    receiver = dispatcher.new_running_state_event_receiver("A")
    created = await dispatcher.client.create(
        microgrid_id=1,
        type="A",
        start_time=clock.now() + MINUTE,
        duration=MINUTE,
        target=ComponentCategory.BATTERY,
    )
    message = await receiver.receive()
    assert message.id == created.id and message.started
    assert clock.now() == created.start_time


# Managing actors


@pytest.mark.parametrize("awaited", [True, False])
async def test_start_managing_awaited_or_not(
    clock: FakeClock, api: ApiClientFactory, awaited: bool
) -> None:
    api.client.set_dispatches(MicrogridId(1), [running_now(1, clock)])
    factory = Factory()
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        assert not d.is_managed("A")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if awaited:
                await d.start_managing("A", actor_factory=factory)
            else:
                d.start_managing("A", actor_factory=factory)
            gc.collect()
        # No "coroutine ... was never awaited" either way.
        assert [
            str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
        ] == []
        assert d.is_managed("A")
        await settle()
        assert factory.running() == [1]
        assert factory.calls[0][1].options == {"id": 1}

        await create(
            api.client, start_time=clock.now() + MINUTE, type="A", payload={"id": 2}
        )
        await clock.advance(2 * MINUTE)
        assert factory.running() == [1, 2]


async def test_duplicate_start_managing_is_ignored(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    api.client.set_dispatches(MicrogridId(1), [running_now(1, clock)])
    first = Factory()
    second = Factory()
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        await d.start_managing("A", actor_factory=first)
        await d.start_managing("A", actor_factory=second, merge_strategy=MergeByType())
        await create(
            api.client, start_time=clock.now() + MINUTE, type="A", payload={"id": 2}
        )
        await clock.advance(2 * MINUTE)
        assert second.calls == []
        # Still the first registration: no merging, one actor per dispatch.
        assert first.running() == [1, 2]


async def test_merge_by_type_shares_one_actor(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    factory = Factory()
    t0 = clock.now()
    await dispatcher.start_managing(
        "A", actor_factory=factory, merge_strategy=MergeByType()
    )
    for n, start in ((1, MINUTE), (2, 5 * MINUTE)):
        await dispatcher.client.create(
            microgrid_id=1,
            type="A",
            start_time=t0 + start,
            duration=10 * MINUTE,
            target=TargetIds(n),
            payload={"id": n},
        )
    await clock.advance_to(t0 + 6 * MINUTE)
    [actor] = factory.actors
    assert [u.options for u in actor.updates] == [{"id": 2}]
    await clock.advance_to(t0 + 12 * MINUTE)  # dispatch 1 ended, 2 runs
    assert actor.is_running
    await clock.advance_to(t0 + 16 * MINUTE)
    assert not actor.is_running
    assert len(factory.calls) == 1


async def test_stop_managing_stops_only_that_type(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    api.client.set_dispatches(
        MicrogridId(1),
        [running_now(1, clock), running_now(2, clock), running_now(3, clock, type="B")],
    )
    factory_a = Factory()
    factory_b = Factory()
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        await d.start_managing("A", actor_factory=factory_a)
        await d.start_managing("B", actor_factory=factory_b)
        await settle()
        assert factory_a.running() == [1, 2]
        assert factory_b.running() == [3]

        await d.stop_managing("A")
        assert not d.is_managed("A")
        assert d.is_managed("B")
        assert factory_a.running() == []
        assert all(a.stopped for a in factory_a.actors)
        assert factory_b.running() == [3]

        # Dispatches of the type no longer start actors.
        await create(
            api.client, start_time=clock.now() + MINUTE, type="A", payload={"id": 4}
        )
        await clock.advance(2 * MINUTE)
        assert len(factory_a.calls) == 2

        # Stopping an unmanaged type is harmless.
        await d.stop_managing("C")
        assert factory_b.running() == [3]


async def test_await_dispatcher_returns_when_every_type_unmanaged(
    dispatcher: Dispatcher,
) -> None:
    await dispatcher.start_managing("A", actor_factory=Factory())
    await dispatcher.start_managing("B", actor_factory=Factory())
    waiter = asyncio.create_task(wait_for(dispatcher))
    await settle()
    assert not waiter.done()

    await dispatcher.stop_managing("A")
    await settle()
    assert not waiter.done()

    await dispatcher.stop_managing("B")
    await settle()
    assert waiter.done()
    await waiter
    assert dispatcher.is_running  # only the managing ended


# Receivers


async def test_running_state_receiver_with_and_without_await(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    api.client.set_dispatches(
        MicrogridId(1), [running_now(1, clock), running_now(2, clock, type="B")]
    )
    async with Dispatcher(microgrid_id=1, server_url=URL, key="k") as d:
        plain = d.new_running_state_event_receiver("A")
        awaited = await d.new_running_state_event_receiver("A")
        assert ids(drain(plain)) == [(1, True)]
        assert ids(drain(awaited)) == [(1, True)]

        # Both get later events, of their type only.
        await create(api.client, start_time=clock.now() + MINUTE, type="A")
        await create(api.client, start_time=clock.now() + MINUTE, type="B")
        await clock.advance(2 * MINUTE)
        assert ids(drain(plain)) == [(3, True)]
        assert ids(drain(awaited)) == [(3, True)]


async def test_late_running_state_receiver_gets_running_dispatches(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    t0 = clock.now()
    client = dispatcher.client
    for type_, start in (("A", MINUTE), ("B", MINUTE), ("A", 30 * MINUTE)):
        await client.create(
            microgrid_id=1,
            type=type_,
            start_time=t0 + start,
            duration=10 * MINUTE,
            target=TargetIds(1),
        )
    await clock.advance_to(t0 + 5 * MINUTE)

    late = dispatcher.new_running_state_event_receiver("A")
    [message] = drain(late)
    assert (int(message.id), message.started, message.type) == (1, True, "A")
    assert message.until == t0 + 11 * MINUTE

    # It then gets the stop of that run and the start of the next.
    assert ids([await late.receive(), await late.receive()]) == [(1, False), (3, True)]
    assert clock.now() == t0 + 30 * MINUTE


async def test_lifecycle_receiver_gets_its_type_only(
    clock: FakeClock, dispatcher: Dispatcher
) -> None:
    receiver = dispatcher.new_lifecycle_events_receiver("A")
    client = dispatcher.client
    start = clock.now() + timedelta(hours=1)
    events: list[Any] = []

    async def read() -> None:
        # Read after each change: unread events of one dispatch coalesce.
        await clock.advance(timedelta(seconds=1))
        events.extend(drain(receiver))

    a = await client.create(
        microgrid_id=1, type="A", start_time=start, duration=MINUTE, target=TargetIds(1)
    )
    await read()
    b = await client.create(
        microgrid_id=1, type="B", start_time=start, duration=MINUTE, target=TargetIds(1)
    )
    await read()
    await client.update(
        microgrid_id=1, dispatch_id=int(b.id), new_fields={"payload": {"x": 1}}
    )
    await read()
    await client.update(
        microgrid_id=1, dispatch_id=int(a.id), new_fields={"payload": {"x": 2}}
    )
    await read()
    await client.delete(microgrid_id=1, dispatch_id=int(b.id))
    await read()
    await client.delete(microgrid_id=1, dispatch_id=int(a.id))
    await read()
    assert [type(e) for e in events] == [Created, Updated, Deleted]
    assert all(e.dispatch.id == a.id and e.dispatch.type == "A" for e in events)
    assert events[0].dispatch.payload == {}
    assert events[1].dispatch.payload == {"x": 2}
    assert isinstance(events[0].dispatch, Dispatch)


# Bad arguments


@pytest.mark.parametrize("dispatch_type", [5, None, b"A", ("A",)])
async def test_non_str_dispatch_type_is_rejected(
    dispatcher: Dispatcher, dispatch_type: Any
) -> None:
    with pytest.raises(TypeError, match="dispatch_type"):
        dispatcher.new_running_state_event_receiver(dispatch_type)
    with pytest.raises(TypeError, match="dispatch_type"):
        dispatcher.new_lifecycle_events_receiver(dispatch_type)
    with pytest.raises(TypeError, match="dispatch_type"):
        await dispatcher.start_managing(dispatch_type, actor_factory=Factory())
    assert not dispatcher.is_managed(dispatch_type)


async def test_unhashable_dispatch_type_is_named(dispatcher: Dispatcher) -> None:
    # Regression: start_managing looked the type up in a dict before checking
    # it, raising "unhashable type" without naming the argument.
    with pytest.raises(TypeError, match="dispatch_type"):
        dispatcher.new_running_state_event_receiver(["A"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dispatch_type"):
        await dispatcher.start_managing(
            ["A"],  # type: ignore[arg-type]
            actor_factory=Factory(),
        )


@pytest.mark.parametrize("merge_strategy", ["MergeByType", MergeByType, 1, object()])
async def test_bad_merge_strategy_is_rejected(
    dispatcher: Dispatcher, merge_strategy: Any
) -> None:
    with pytest.raises(TypeError, match="merge_strategy"):
        dispatcher.new_running_state_event_receiver("A", merge_strategy=merge_strategy)
    with pytest.raises(TypeError, match="merge_strategy"):
        await dispatcher.start_managing(
            "A", actor_factory=Factory(), merge_strategy=merge_strategy
        )
    assert not dispatcher.is_managed("A")


async def test_bad_start_managing_arguments_leave_type_unmanaged(
    dispatcher: Dispatcher,
) -> None:
    with pytest.raises(TypeError, match="actor_factory"):
        await dispatcher.start_managing("A", actor_factory=None)  # type: ignore[arg-type]
    assert not dispatcher.is_managed("A")
    with pytest.raises(ValueError, match="retry_interval"):
        await dispatcher.start_managing(
            "A", actor_factory=Factory(), retry_interval=timedelta(0)
        )
    assert not dispatcher.is_managed("A")
    # A later valid call works.
    await dispatcher.start_managing("A", actor_factory=Factory())
    assert dispatcher.is_managed("A")
