# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Fixtures: a running in-memory service and clients connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import grpc.aio
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import Dispatch, TargetIds

from frequenz.dispatch.local_service import LocalDispatchService

if TYPE_CHECKING:
    # Only exists for type checkers: the async flavour of the generated stub.
    from frequenz.api.dispatch.v1.dispatch_pb2_grpc import (
        MicrogridDispatchServiceAsyncStub,
    )

    Stub: TypeAlias = MicrogridDispatchServiceAsyncStub

KEY = "test-key-0123456789"
MICROGRID = MicrogridId(1)
OTHER_MICROGRID = MicrogridId(2)
TIMEOUT = 10.0
"""Upper bound for anything a test awaits; only reached if something is broken."""


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run these tests on a real event loop: they do real network I/O."""
    del config, item
    return {"real_loop": asyncio.new_event_loop}


def in_future(seconds: int = 3600) -> datetime:
    """A whole-second UTC time `seconds` from now (the service keeps whole seconds)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now + timedelta(seconds=seconds)


def target_of(url: str) -> str:
    """The `host:port` part of a service URL."""
    return url.removeprefix("grpc://").split("?")[0]


@pytest.fixture
async def service() -> AsyncIterator[LocalDispatchService]:
    """A running service with an in-memory database."""
    async with LocalDispatchService(database=":memory:", key=KEY) as running:
        yield running


def make_client(service: LocalDispatchService, **kwargs: Any) -> DispatchApiClient:
    """A client for `service`, with a short call timeout."""
    options: dict[str, Any] = {"auth_key": service.key}
    options.update(kwargs)
    return DispatchApiClient(
        server_url=service.url, call_timeout=timedelta(seconds=TIMEOUT), **options
    )


@pytest.fixture
async def client(service: LocalDispatchService) -> AsyncIterator[DispatchApiClient]:
    """A client connected to `service`."""
    dispatch_client = make_client(service)
    try:
        yield dispatch_client
    finally:
        await dispatch_client.disconnect()


@pytest.fixture
async def channel(service: LocalDispatchService) -> AsyncIterator[grpc.aio.Channel]:
    """A raw channel to `service`, for requests the client cannot send."""
    async with grpc.aio.insecure_channel(target_of(service.url)) as raw_channel:
        yield raw_channel


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    """A raw stub on `channel`."""
    return dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)


CreateFn = Callable[..., Awaitable[Dispatch]]


@pytest.fixture
def create(client: DispatchApiClient) -> CreateFn:
    """Create a dispatch with defaults for every argument not given."""

    async def _create(**kwargs: Any) -> Dispatch:
        arguments: dict[str, Any] = {
            "microgrid_id": MICROGRID,
            "type": "TEST",
            "start_time": in_future(),
            "duration": timedelta(minutes=10),
            "target": TargetIds(1, 2),
        }
        arguments.update(kwargs)
        return await client.create(**arguments)

    return _create


def auth_metadata(key: str = KEY) -> tuple[tuple[str, str], ...]:
    """Metadata with just the API key, as the client sends it."""
    return (("key", key),)


async def rpc_error(awaitable: Awaitable[object]) -> grpc.aio.AioRpcError:
    """Await something that must fail with a gRPC error, and return the error."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value
