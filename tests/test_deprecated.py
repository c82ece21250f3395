# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Tests of the deprecated API: it warns, and still works as it used to."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import pytest
from frequenz.channels import BroadcastChannel, BroadcastReceiver, Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.test.client import FakeClient

import frequenz.dispatch
from frequenz.dispatch import Created, Deleted, Dispatch, Dispatcher, DispatchEvent
from frequenz.dispatch._deprecated import RunningState as PrivateRunningState
from frequenz.dispatch.actor import DispatchingActor
from frequenz.dispatch.testing import FakeClock, settle

from .helpers import MICROGRID, ApiClientFactory, create, drain, make_dispatch

# frequenz-channels 1.12's BroadcastChannel builds the Broadcast it deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Please use BroadcastChannel instead:DeprecationWarning"
)

MINUTE = timedelta(minutes=1)


def summary(messages: list[Dispatch]) -> set[tuple[int, str, bool]]:
    """Return (id, type, started) of running-state messages."""
    return {(int(m.id), m.type, m.started) for m in messages}


def lifecycle_summary(events: list[DispatchEvent]) -> list[tuple[str, int, str]]:
    """Return (event class, id, type) of lifecycle events."""
    return [(type(e).__name__, int(e.dispatch.id), e.dispatch.type) for e in events]


async def receive_all(receiver: Receiver[Any], count: int) -> list[Any]:
    """Receive `count` messages, waiting (in fake time) as long as needed."""
    return [await receiver.receive() for _ in range(count)]


# RunningState


def test_running_state_import_warns() -> None:
    with pytest.warns(DeprecationWarning, match="RunningState"):
        from frequenz.dispatch import RunningState
    assert RunningState is PrivateRunningState
    assert {state.name for state in RunningState} == {
        "RUNNING",
        "STOPPED",
        "DIFFERENT_TYPE",
    }
    with pytest.warns(DeprecationWarning, match="RunningState"):
        assert frequenz.dispatch.RunningState is PrivateRunningState


def test_current_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from frequenz.dispatch import ActorDispatcher, MergeByType

        assert ActorDispatcher.__name__ == "ActorDispatcher"
        assert MergeByType.__name__ == "MergeByType"
    with pytest.raises(AttributeError):
        _ = frequenz.dispatch.NoSuchName


# Dispatch.running


def running_of(dispatch: Dispatch, dispatch_type: str) -> PrivateRunningState:
    """Call the deprecated `Dispatch.running`, checking that it warns."""
    with pytest.warns(DeprecationWarning, match="running"):
        return dispatch.running(dispatch_type)


async def test_dispatch_running(clock: FakeClock) -> None:
    now = clock.now()
    running = Dispatch(make_dispatch(1, start_time=now - MINUTE, type="A"))
    future = Dispatch(make_dispatch(2, start_time=now + MINUTE, type="A"))
    past = Dispatch(make_dispatch(3, start_time=now - 20 * MINUTE, type="A"))
    inactive = Dispatch(
        make_dispatch(4, start_time=now - MINUTE, type="A", active=False)
    )
    deleted = Dispatch(make_dispatch(5, start_time=now - MINUTE, type="A"), True)

    assert running_of(running, "A") is PrivateRunningState.RUNNING
    assert running_of(future, "A") is PrivateRunningState.STOPPED
    assert running_of(past, "A") is PrivateRunningState.STOPPED
    assert running_of(inactive, "A") is PrivateRunningState.STOPPED
    assert running_of(deleted, "A") is PrivateRunningState.STOPPED
    for dispatch in (running, future, past, inactive, deleted):
        assert running_of(dispatch, "B") is PrivateRunningState.DIFFERENT_TYPE

    # It follows the clock.
    await clock.advance(2 * MINUTE)
    assert running_of(future, "A") is PrivateRunningState.RUNNING
    await clock.advance(10 * MINUTE)
    assert running_of(running, "A") is PrivateRunningState.STOPPED


# DispatchingActor


async def test_dispatching_actor_forwards_every_type(clock: FakeClock) -> None:
    t0 = clock.now()
    client = FakeClient()
    client.set_dispatches(
        MICROGRID, [make_dispatch(1, start_time=t0 - MINUTE, type="A")]
    )
    lifecycle_sender, lifecycle = BroadcastChannel[DispatchEvent](
        name="lifecycle", limit=100
    )
    running_sender, running = BroadcastChannel[Dispatch](name="running", limit=100)

    with pytest.warns(DeprecationWarning, match="DispatchingActor"):
        actor = DispatchingActor(1, client, lifecycle_sender, running_sender)
    actor.start()
    try:
        await settle()
        assert lifecycle_summary(await receive_all(lifecycle, 1)) == [
            ("Created", 1, "A")
        ]
        assert summary(await receive_all(running, 1)) == {(1, "A", True)}

        a = await create(client, start_time=t0 + MINUTE, type="A")
        b = await create(client, start_time=t0 + MINUTE, type="B")
        await client.delete(microgrid_id=MICROGRID, dispatch_id=b.id)
        c = await create(client, start_time=t0 + MINUTE, type="C")
        events = await receive_all(lifecycle, 4)
        assert lifecycle_summary(events) == [
            ("Created", int(a.id), "A"),
            ("Created", int(b.id), "B"),
            ("Deleted", int(b.id), "B"),
            ("Created", int(c.id), "C"),
        ]
        assert isinstance(events[2], Deleted)
        assert isinstance(events[3], Created)

        await clock.advance(20 * MINUTE)
        assert summary(drain_broadcast(running)) == {
            (int(a.id), "A", True),
            (int(c.id), "C", True),
            (1, "A", False),
            (int(a.id), "A", False),
            (int(c.id), "C", False),
        }
    finally:
        await actor.stop()
    assert not actor.is_running


def drain_broadcast(receiver: BroadcastReceiver[Any]) -> list[Any]:
    """Return every message a broadcast receiver holds now."""
    messages: list[Any] = []
    while len(receiver):
        messages.append(receiver.consume())
    return messages


# Dispatcher.running_status_change / lifecycle_events


async def test_running_status_change_receives_every_type(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    t0 = clock.now()
    api.client.set_dispatches(
        MicrogridId(1), [make_dispatch(1, start_time=t0 - MINUTE, type="A")]
    )
    async with Dispatcher(microgrid_id=1, server_url="grpc://x:1", key="k") as d:
        with pytest.warns(DeprecationWarning, match="running_status_change"):
            receiver = d.running_status_change.new_receiver()
        # What runs now arrives at once.
        assert summary(drain(receiver)) == {(1, "A", True)}

        a = await create(api.client, start_time=t0 + MINUTE, type="A")
        b = await create(api.client, start_time=t0 + MINUTE, type="B")
        await clock.advance(2 * MINUTE)
        assert summary(drain(receiver)) == {
            (int(a.id), "A", True),
            (int(b.id), "B", True),
        }


async def test_lifecycle_events_receives_every_type(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    async with Dispatcher(microgrid_id=1, server_url="grpc://x:1", key="k") as d:
        with pytest.warns(DeprecationWarning, match="lifecycle_events"):
            receiver = d.lifecycle_events.new_receiver()
        a = await create(api.client, start_time=clock.now() + MINUTE, type="A")
        b = await create(api.client, start_time=clock.now() + MINUTE, type="B")
        await settle()
        assert lifecycle_summary(drain(receiver)) == [
            ("Created", int(a.id), "A"),
            ("Created", int(b.id), "B"),
        ]
