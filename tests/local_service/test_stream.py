# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Streaming of dispatch events, also across service restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio
from frequenz.api.common.v1alpha8.streaming.event_pb2 import Event as PBEvent
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.channels import Receiver
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import DispatchEvent, TargetIds

from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import (
    KEY,
    MICROGRID,
    OTHER_MICROGRID,
    TIMEOUT,
    CreateFn,
    auth_metadata,
    make_client,
    rpc_error,
)

if TYPE_CHECKING:
    from .conftest import Stub


async def _receive(receiver: Receiver[DispatchEvent]) -> DispatchEvent:
    async with asyncio.timeout(TIMEOUT):
        return await receiver.receive()


async def test_events_reach_two_subscribers(
    service: LocalDispatchService, client: DispatchApiClient, create: CreateFn
) -> None:
    other_client = make_client(service)
    try:
        receivers = [client.stream(MICROGRID), other_client.stream(MICROGRID)]
        async with asyncio.timeout(TIMEOUT):
            await service.wait_for_subscribers(int(MICROGRID), 2)

        created = await create()
        updated = await client.update(
            microgrid_id=MICROGRID, dispatch_id=created.id, new_fields={"active": False}
        )
        await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)

        for receiver in receivers:
            events = [await _receive(receiver) for _ in range(3)]
            assert [e.event for e in events] == [
                Event.CREATED,
                Event.UPDATED,
                Event.DELETED,
            ]
            assert events[0].dispatch == created
            assert events[1].dispatch == updated
            assert events[2].dispatch == updated
    finally:
        await other_client.disconnect()


async def test_initial_metadata_means_subscribed(
    service: LocalDispatchService, stub: Stub, create: CreateFn
) -> None:
    call = stub.StreamMicrogridDispatches(
        pb.StreamMicrogridDispatchesRequest(microgrid_id=int(MICROGRID)),
        metadata=auth_metadata(),
    )
    async with asyncio.timeout(TIMEOUT):
        await call.initial_metadata()
    # No waiting: once the metadata arrived, the subscription exists.
    assert service.subscriber_count(int(MICROGRID)) == 1
    created = await create()
    async with asyncio.timeout(TIMEOUT):
        response = await call.read()
    assert isinstance(response, pb.StreamMicrogridDispatchesResponse)
    assert response.event == PBEvent.EVENT_CREATED
    assert response.dispatch.metadata.dispatch_id == int(created.id)
    call.cancel()


async def test_streams_are_per_microgrid(
    service: LocalDispatchService, client: DispatchApiClient, create: CreateFn
) -> None:
    receiver = client.stream(OTHER_MICROGRID)
    async with asyncio.timeout(TIMEOUT):
        await service.wait_for_subscribers(int(OTHER_MICROGRID))
    await create()
    elsewhere = await create(microgrid_id=OTHER_MICROGRID)
    event = await _receive(receiver)
    assert event.dispatch == elsewhere


async def test_slow_subscriber_loses_nothing_and_blocks_nobody(
    service: LocalDispatchService, stub: Stub, create: CreateFn
) -> None:
    request = pb.StreamMicrogridDispatchesRequest(microgrid_id=int(MICROGRID))
    slow = stub.StreamMicrogridDispatches(request, metadata=auth_metadata())
    fast = stub.StreamMicrogridDispatches(request, metadata=auth_metadata())
    async with asyncio.timeout(TIMEOUT):
        await slow.initial_metadata()
        await fast.initial_metadata()

    count = 200
    created = [await create(payload={"blob": "x" * 2000}) for _ in range(count)]
    expected = [int(dispatch.id) for dispatch in created]

    async def read(call: object, number: int) -> list[int]:
        ids = []
        for _ in range(number):
            response = await call.read()  # type: ignore[attr-defined]
            ids.append(response.dispatch.metadata.dispatch_id)
        return ids

    async with asyncio.timeout(TIMEOUT):
        # The fast one gets everything while the slow one has read nothing.
        assert await read(fast, count) == expected
        assert await read(slow, count) == expected
    slow.cancel()
    fast.cancel()


async def test_stop_ends_streams_with_unavailable() -> None:
    service = LocalDispatchService(key=KEY)
    await service.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        own_stub = dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)
        call = own_stub.StreamMicrogridDispatches(
            pb.StreamMicrogridDispatchesRequest(microgrid_id=1),
            metadata=auth_metadata(),
        )
        async with asyncio.timeout(TIMEOUT):
            await call.initial_metadata()
            await service.stop()
            error = await rpc_error(call.read())
    # Not OK: a finished stream would make the client give up instead of retrying.
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_restart_on_same_port_while_client_connected(tmp_path: Path) -> None:
    database = tmp_path / "dispatches.sqlite3"
    first = LocalDispatchService(database=database, key=KEY)
    await first.start()
    client = make_client(first)
    try:
        receiver = client.stream(MICROGRID)
        async with asyncio.timeout(TIMEOUT):
            await first.wait_for_subscribers(int(MICROGRID))
        before = await client.create(
            MICROGRID, "BEFORE", "NOW", timedelta(hours=1), target=TargetIds(1)
        )
        assert (await _receive(receiver)).dispatch == before
        await first.stop()

        second = LocalDispatchService(database=database, key=KEY, port=first.port)
        async with second:
            assert second.url == first.url
            # The client's stream reconnects by itself (after its retry delay).
            async with asyncio.timeout(TIMEOUT):
                await second.wait_for_subscribers(int(MICROGRID))
            after = await client.create(
                MICROGRID, "AFTER", "NOW", timedelta(hours=1), target=TargetIds(1)
            )
            assert after.id > before.id
            assert (await _receive(receiver)).dispatch == after
            assert await client.get(microgrid_id=MICROGRID, dispatch_id=before.id) == (
                before
            )
    finally:
        await client.disconnect()


async def test_restart_same_instance_keeps_url(tmp_path: Path) -> None:
    service = LocalDispatchService(database=tmp_path / "db.sqlite3", key=KEY)
    await service.start()
    url = service.url
    await service.stop()
    assert not service.is_running
    await service.start()
    try:
        assert service.url == url
    finally:
        await service.stop()


async def test_concurrent_writes_are_streamed_in_commit_order(
    service: LocalDispatchService, client: DispatchApiClient, create: CreateFn
) -> None:
    receiver = client.stream(MICROGRID)
    async with asyncio.timeout(TIMEOUT):
        await service.wait_for_subscribers(int(MICROGRID))
    created = await asyncio.gather(*(create(type=f"T{n}") for n in range(20)))
    events = [await _receive(receiver) for _ in created]
    ids = [int(event.dispatch.id) for event in events]
    assert ids == sorted(ids) == sorted(int(d.id) for d in created)
    create_times = [event.dispatch.create_time for event in events]
    assert create_times == sorted(create_times)
