# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`Dispatcher.status` and `new_status_receiver()` on the fake clock.

The `Dispatcher` is built through its public constructor; its API client is
replaced by the controllable fake service (`tests/fake_service.py`), so that the
connection can be broken and restored at chosen instants.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatcher, DispatcherStatus, StateSource
from frequenz.dispatch import _dispatcher as dispatcher_module
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._commands import watch
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .fake_service import ControllableClient
from .helpers import MICROGRID, create, make_dispatch

URL = "grpc://dispatch.example.com:50051"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> ControllableClient:
    """Make `Dispatcher` use a controllable fake service."""
    client = ControllableClient()

    def factory(**_: object) -> ControllableClient:
        return client

    monkeypatch.setattr(dispatcher_module, "DispatchApiClient", factory)
    return client


@pytest.fixture
async def dispatcher(
    clock: FakeClock, fake: ControllableClient
) -> AsyncIterator[Dispatcher]:
    """A dispatcher on microgrid 1, after its first sync."""
    async with Dispatcher(
        microgrid_id=1, server_url=URL, key="secret", clock=clock.now
    ) as running:
        await settle()
        yield running


def store(fake: ControllableClient, *dispatches: ClientDispatch) -> None:
    """Put dispatches in the fake service without going through the stream."""
    fake.set_dispatches(MICROGRID, list(dispatches))


async def elapse(clock: FakeClock, delta: timedelta) -> None:
    """Let fake time pass, then let every woken task run."""
    await clock.advance(delta)
    await settle()


async def test_before_start_nothing_is_ready(fake: ControllableClient) -> None:
    dispatcher = Dispatcher(microgrid_id=7, server_url=URL, key="secret")
    status = dispatcher.status
    assert status == DispatcherStatus(
        microgrid_id=7, connected=False, source=StateSource.NONE
    )
    assert not status.ready
    assert status.last_full_sync is None and status.last_error is None


async def test_after_the_first_sync(clock: FakeClock, fake: ControllableClient) -> None:
    now = clock.now()
    store(
        fake,
        make_dispatch(1, start_time=now - MINUTE, type="A"),
        make_dispatch(2, start_time=now - MINUTE, type="A"),
        make_dispatch(3, start_time=now - MINUTE, type="B"),
        make_dispatch(4, start_time=now + 5 * MINUTE, type="B"),
    )
    async with Dispatcher(
        microgrid_id=1, server_url=URL, key="secret", clock=clock.now
    ) as dispatcher:
        status = dispatcher.status
        assert status.connected and status.ready
        assert status.source is StateSource.SERVICE
        assert status.last_full_sync == now
        assert status.last_sync_duration == timedelta(0)  # no fake time passed
        assert status.dispatches == 4
        assert status.running == {"A": 2, "B": 1}
        assert status.next_change == now + 5 * MINUTE
        assert status.resyncs == 0 and status.reconnects == 0
        assert status.failed_attempts == 0
        assert status.is_healthy(now, max_offline=MINUTE)
        # The same snapshot from the scheduler behind it.
        assert dispatcher._bg_service.status == status

        # An immutable value, kept as it was.
        with pytest.raises(dataclasses.FrozenInstanceError):
            status.connected = False  # type: ignore[misc]
        with pytest.raises(TypeError):
            status.running["A"] = 0  # type: ignore[index]

        await elapse(clock, 9 * MINUTE + timedelta(seconds=1))
        later = dispatcher.status
        # 1 to 3 ended at +9 min; 4 started at +5 min and ends at +15 min.
        assert later.running == {"B": 1}
        assert status.running == {"A": 2, "B": 1}
        assert later.next_change == now + 15 * MINUTE


async def test_outage_and_reconnect(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    before = clock.now()
    fake.service.break_streams()
    await settle()
    down = dispatcher.status
    assert not down.connected
    assert down.ready  # still acting on the state it holds
    assert down.source is StateSource.SERVICE
    assert down.last_error is not None and "UNAVAILABLE" in down.last_error
    assert down.last_error_at == before
    assert down.disconnected_since == before
    assert down.failed_attempts >= 1

    await elapse(clock, 10 * MINUTE)
    still_down = dispatcher.status
    assert still_down.failed_attempts > down.failed_attempts
    assert still_down.disconnected_since == before  # the outage's start, kept
    assert still_down.is_healthy(clock.now(), max_offline=11 * MINUTE)
    assert not still_down.is_healthy(clock.now(), max_offline=9 * MINUTE)

    fake.service.reconnect()
    await elapse(clock, timedelta(seconds=31))  # the longest back-off
    up = dispatcher.status
    assert up.connected
    assert up.disconnected_since is None
    assert up.resyncs == 1 and up.reconnects == 1
    assert up.last_full_sync is not None and up.last_full_sync > before
    assert up.last_error == still_down.last_error  # the last error stays visible


async def test_a_clean_close_is_a_reconnect_without_error(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    fake.service.close_streams()
    await settle()
    assert not dispatcher.status.connected
    assert dispatcher.status.last_error is None
    await elapse(clock, timedelta(seconds=1))
    status = dispatcher.status
    assert status.connected and status.resyncs == 1 and status.reconnects == 1
    assert status.failed_attempts == 0


async def test_status_receiver_keeps_only_the_latest(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    receiver = dispatcher.new_status_receiver()
    first = await receiver.receive()
    assert first == dispatcher.status and first.dispatches == 0

    # Many changes while the consumer does not read: one snapshot waits.
    for index in range(50):
        await create(fake, type="A", start_time=clock.now() + MINUTE * (index + 1))
        await settle()
    latest = await receiver.receive()
    assert latest.dispatches == 50
    assert latest == dispatcher.status
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await receiver.receive()

    # The next change is published.
    fake.service.break_streams()
    await settle()
    assert not (await receiver.receive()).connected


async def test_status_receiver_sees_running_changes(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    receiver = dispatcher.new_status_receiver()
    await receiver.receive()
    await create(fake, type="A", start_time=clock.now() + MINUTE)
    await settle()
    assert (await receiver.receive()).running == {}
    await elapse(clock, MINUTE)
    assert (await receiver.receive()).running == {"A": 1}
    await elapse(clock, 10 * MINUTE)
    assert (await receiver.receive()).running == {}


async def test_stopping_publishes_disconnected_and_closes_receivers(
    clock: FakeClock, fake: ControllableClient
) -> None:
    dispatcher = Dispatcher(
        microgrid_id=1, server_url=URL, key="secret", clock=clock.now
    )
    async with dispatcher:
        receiver = dispatcher.new_status_receiver()
        assert (await receiver.receive()).connected
    final = [status async for status in receiver]
    assert [status.connected for status in final] == [False]
    assert not dispatcher.status.connected


async def test_scheduler_status_and_receiver(
    clock: FakeClock, fake: ControllableClient
) -> None:
    store(fake, make_dispatch(1, start_time=clock.now() - MINUTE, type="X"))
    scheduler = DispatchScheduler(MICROGRID, fake, clock=clock.now)
    assert scheduler.status.source is StateSource.NONE
    scheduler.start()
    try:
        await scheduler.wait_for_initialization()
        await settle()
        receiver = scheduler.new_status_receiver()
        status = await receiver.receive()
        assert status == scheduler.status
        assert status.microgrid_id == 1 and status.running == {"X": 1}
        await fake.delete(microgrid_id=MICROGRID, dispatch_id=DispatchId(1))
        await settle()
        assert (await receiver.receive()).dispatches == 0
    finally:
        await scheduler.stop()


async def test_source_is_cache_until_the_service_answers(
    clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    client.set_dispatches(
        MICROGRID, [make_dispatch(1, start_time=clock.now() - MINUTE, type="A")]
    )
    writer = DispatchScheduler(MICROGRID, client, clock=clock.now, cache_file=path)
    writer.start()
    await writer.wait_for_initialization()
    synced_at = writer.status.last_full_sync
    assert synced_at is not None and writer.status.cache_synced_at is None
    await writer.stop()

    await elapse(clock, 5 * MINUTE)
    client.service.break_streams()  # unreachable from now on
    offline = DispatchScheduler(MICROGRID, client, clock=clock.now, cache_file=path)
    offline.start()
    try:
        await offline.wait_for_initialization()
        await settle()
        status = offline.status
        assert status.source is StateSource.CACHE and status.ready
        assert not status.connected and status.last_full_sync is None
        assert status.dispatches == 1 and status.running == {"A": 1}
        assert status.cache_synced_at == synced_at
        assert status.cache_age(clock.now()) == 5 * MINUTE
        await elapse(clock, MINUTE)
        assert offline.status.cache_age(clock.now()) == 6 * MINUTE
        client.service.reconnect()
        await elapse(clock, timedelta(seconds=31))
        status = offline.status
        assert status.source is StateSource.SERVICE and status.connected
        # What the dispatcher started from stays visible.
        assert status.cache_synced_at == synced_at
    finally:
        await offline.stop()


def test_cache_age_is_none_without_a_cache() -> None:
    status = DispatcherStatus(microgrid_id=1, connected=True, source=StateSource.NONE)
    assert status.cache_age(START) is None
    cached = dataclasses.replace(
        status, source=StateSource.CACHE, cache_synced_at=START - MINUTE
    )
    assert cached.cache_age(START) == MINUTE


def test_watch_header_shows_the_cache_age_while_serving_from_it() -> None:
    status = DispatcherStatus(
        microgrid_id=1,
        connected=False,
        source=StateSource.CACHE,
        cache_synced_at=START - timedelta(hours=2),
        dispatches=3,
    )
    line = watch.header(status, START)
    assert "from cache synced 2026-01-05 10:00:00Z (7200 s old)" in line
    served = dataclasses.replace(status, source=StateSource.SERVICE, connected=True)
    assert "from cache" not in watch.header(served, START)
