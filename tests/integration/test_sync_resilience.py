# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Sync against a real service that loses data, is restored, sends big pages.

Every test runs a `Dispatcher` on the local service over real gRPC. The service
is restarted on the same port with another database file to simulate data loss
(an empty file) or a restore (a copy of the file taken earlier).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

from frequenz.dispatch import Created, Deleted, Dispatcher, Updated
from frequenz.dispatch._client import TunedDispatchApiClient
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import (
    KEY,
    MICROGRID,
    TIMEOUT,
    create,
    held_state,
    make_client,
    make_dispatcher,
    receive,
    receive_n,
    service_state,
)

TYPE = "RESILIENCE"


async def _restart_on(
    service: LocalDispatchService, database: Path
) -> LocalDispatchService:
    """Stop `service` and serve `database` on the same port instead."""
    port = service.port
    await service.stop()
    restarted = LocalDispatchService(database=database, key=KEY, port=port)
    await restarted.start()
    return restarted


async def _wait_resync(dispatcher: Dispatcher, before: int) -> None:
    scheduler = dispatcher._bg_service
    async with asyncio.timeout(TIMEOUT):
        while scheduler.resyncs <= before:  # noqa: ASYNC110  # a counter
            await asyncio.sleep(0.01)


async def test_ids_reused_after_data_loss_are_new_dispatches(tmp_path: Path) -> None:
    """After the service lost its data, ids 1, 2... again are Created and started."""
    service = LocalDispatchService(database=tmp_path / "a.sqlite3", key=KEY)
    await service.start()
    client = make_client(service)
    try:
        async with make_dispatcher(service) as dispatcher:
            lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
            running = await dispatcher.new_running_state_event_receiver(TYPE)
            old = [
                await create(client, type=TYPE, start_time="NOW", duration=None)
                for _ in range(2)
            ]
            assert [type(e) for e in await receive_n(lifecycle, 2)] == [Created] * 2
            assert all(m.started for m in await receive_n(running, 2))

            before = dispatcher._bg_service.resyncs
            service = await _restart_on(service, tmp_path / "empty.sqlite3")
            await _wait_resync(dispatcher, before)
            deleted = await receive_n(lifecycle, 2)
            assert {(type(e), int(e.dispatch.id)) for e in deleted} == {
                (Deleted, int(d.id)) for d in old
            }
            assert not any(m.started for m in await receive_n(running, 2))

            await client.disconnect()
            client = make_client(service)
            await service.wait_for_subscribers(1)
            new = await create(client, type=TYPE, start_time="NOW", duration=None)
            assert int(new.id) == int(old[0].id)  # the id is reused
            event = await receive(lifecycle)
            assert isinstance(event, Created)
            assert event.dispatch.create_time == new.create_time
            started = await receive(running)
            assert started.started and int(started.id) == int(new.id)
            assert held_state(dispatcher) == await service_state(client)
    finally:
        await client.disconnect()
        await service.stop()


async def test_a_restored_older_backup_is_adopted(tmp_path: Path) -> None:
    """A listed version older than the held one replaces it, with `Updated`."""
    database = tmp_path / "live.sqlite3"
    service = LocalDispatchService(database=database, key=KEY)
    await service.start()
    client = make_client(service)
    try:
        async with make_dispatcher(service) as dispatcher:
            lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
            dispatch = await create(client, type=TYPE, payload={"v": 1})
            await receive(lifecycle)
            # The backup is taken while the service runs (SQLite file copy).
            await service.stop()
            shutil.copy(database, tmp_path / "backup.sqlite3")
            await service.start()
            await client.update(
                microgrid_id=MICROGRID,
                dispatch_id=dispatch.id,
                new_fields={"payload": {"v": 2}},
            )
            updated = await receive(lifecycle, TIMEOUT * 2)
            assert isinstance(updated, Updated) and updated.dispatch.payload == {"v": 2}

            before = dispatcher._bg_service.resyncs
            service = await _restart_on(service, tmp_path / "backup.sqlite3")
            await _wait_resync(dispatcher, before)
            restored = await receive(lifecycle)
            assert isinstance(restored, Updated)
            assert restored.dispatch.payload == {"v": 1}
            await client.disconnect()
            client = make_client(service)
            assert held_state(dispatcher) == await service_state(client)
    finally:
        await client.disconnect()
        await service.stop()


async def test_big_pages_sync(service: LocalDispatchService) -> None:
    """90 dispatches with 48 kB payloads (a 4.3 MB page at 1,000 per page) sync."""
    # The raw client could not list them in one page either: give it our limits.
    client = TunedDispatchApiClient(
        server_url=service.url,
        auth_key=service.key,
        call_timeout=timedelta(seconds=TIMEOUT),
    )
    try:
        blob = "x" * 48_000
        for i in range(90):
            await create(client, type=TYPE, payload={"blob": blob, "i": i})
        async with asyncio.timeout(TIMEOUT * 3), make_dispatcher(service) as dispatcher:
            assert held_state(dispatcher) == await service_state(client)
            assert len(held_state(dispatcher)) == 90
    finally:
        await client.disconnect()


async def test_service_down_at_start(tmp_path: Path) -> None:
    """A Dispatcher started before its service syncs once the service is up."""
    probe = LocalDispatchService(database=tmp_path / "db.sqlite3", key=KEY)
    await probe.start()
    client = make_client(probe)
    await create(client, type=TYPE)
    await client.disconnect()
    port = probe.port
    await probe.stop()
    dispatcher = make_dispatcher(probe)
    dispatcher.start()
    try:
        await asyncio.sleep(1.5)
        service = LocalDispatchService(
            database=tmp_path / "db.sqlite3", key=KEY, port=port
        )
        await service.start()
        try:
            await dispatcher.wait_for_initialization(timedelta(seconds=TIMEOUT))
            client = make_client(service)
            assert held_state(dispatcher) == await service_state(client)
            await client.disconnect()
        finally:
            await service.stop()
    finally:
        await dispatcher.stop()
