# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Fixtures and helpers: a local Dispatch API service on a file, clients for it.

Everything here talks real gRPC over loopback on a real event loop (see
`tests/conftest.py`, `REAL_LOOP_FOLDERS`). Every wait is bounded by
`asyncio.timeout`, so a broken library fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch import Dispatch, Dispatcher
from frequenz.dispatch.local_service import LocalDispatchService

KEY = "integration-test-key-0123456789"
MICROGRID_ID = 1
MICROGRID = MicrogridId(MICROGRID_ID)
TIMEOUT = 10.0
"""Upper bound for anything a test awaits; only reached if something is broken."""

T = TypeVar("T")


def in_seconds(seconds: int) -> datetime:
    """Return a whole-second UTC time at least `seconds` from now.

    The service keeps start times in whole seconds; rounding up here makes the
    stored time exactly the one asked for.
    """
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=0) + timedelta(seconds=seconds + 1)


def make_client(
    service: LocalDispatchService, key: str | None = None
) -> DispatchApiClient:
    """Return a raw frequenz-client-dispatch client for `service`."""
    return DispatchApiClient(
        server_url=service.url,
        auth_key=service.key if key is None else key,
        call_timeout=timedelta(seconds=TIMEOUT),
    )


def make_dispatcher(
    service: LocalDispatchService, key: str | None = None
) -> Dispatcher:
    """Return a `Dispatcher` for microgrid 1 of `service` (not started)."""
    return Dispatcher(
        microgrid_id=MICROGRID_ID,
        server_url=service.url,
        key=service.key if key is None else key,
        call_timeout=timedelta(seconds=TIMEOUT),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder as `integration`."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """An SQLite file for the service (created on its first start)."""
    return tmp_path / "dispatches.sqlite3"


@pytest.fixture
async def service(database: Path) -> AsyncIterator[LocalDispatchService]:
    """A running service on a file database, on a free loopback port."""
    running = LocalDispatchService(database=database, key=KEY)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(service: LocalDispatchService) -> AsyncIterator[DispatchApiClient]:
    """A client of `service`, separate from any `Dispatcher`."""
    api = make_client(service)
    try:
        yield api
    finally:
        await api.disconnect()


@pytest.fixture
async def dispatcher(service: LocalDispatchService) -> AsyncIterator[Dispatcher]:
    """A `Dispatcher` on `service`, synced (its `async with` block entered)."""
    async with asyncio.timeout(TIMEOUT), make_dispatcher(service) as running:
        yield running


async def create(client: DispatchApiClient, **fields: Any) -> ClientDispatch:
    """Create a dispatch of microgrid 1; arguments not given get defaults."""
    arguments: dict[str, Any] = {
        "microgrid_id": MICROGRID,
        "type": "TEST",
        "start_time": in_seconds(3600),
        "duration": timedelta(minutes=10),
        "target": TargetIds(1, 2),
    }
    arguments.update(fields)
    return await client.create(**arguments)


async def list_all(client: DispatchApiClient) -> list[ClientDispatch]:
    """Every dispatch of microgrid 1, as the service has it now."""
    return [d async for page in client.list(MICROGRID) for d in page]


async def receive(receiver: Receiver[T], timeout: float = TIMEOUT) -> T:
    """Return the next message of `receiver`, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        return await receiver.receive()


async def receive_n(
    receiver: Receiver[T], count: int, timeout: float = TIMEOUT
) -> list[T]:
    """Return the next `count` messages of `receiver`, within `timeout` in all."""
    async with asyncio.timeout(timeout):
        return [await receiver.receive() for _ in range(count)]


def state_of(dispatch: ClientDispatch) -> tuple[Any, ...]:
    """What must be identical between the service and the Dispatcher's copy."""
    return (
        int(dispatch.id),
        dispatch.type,
        dispatch.start_time,
        dispatch.duration,
        dispatch.target,
        dispatch.active,
        dispatch.dry_run,
        dispatch.payload,
        dispatch.recurrence,
        dispatch.create_time,
        dispatch.update_time,
    )


def held_state(dispatcher: Dispatcher) -> dict[int, tuple[Any, ...]]:
    """The dispatches the Dispatcher's scheduler holds, by id."""
    schedule = dispatcher._bg_service._schedule
    held: dict[int, tuple[Any, ...]] = {}
    for dispatch_id in schedule.ids():
        dispatch = schedule.get(dispatch_id)
        assert dispatch is not None
        held[int(dispatch_id)] = state_of(dispatch)
    return held


async def service_state(client: DispatchApiClient) -> dict[int, tuple[Any, ...]]:
    """The dispatches the service has, by id."""
    return {int(d.id): state_of(d) for d in await list_all(client)}


def running_summary(dispatch: Dispatch) -> tuple[int, bool, Any]:
    """A running-state event as (id, started, payload), for comparisons."""
    return (int(dispatch.id), dispatch.started, dispatch.payload)
