# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`Dispatcher.status` over real gRPC while the local service stops and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from frequenz.dispatch import Dispatcher, DispatcherStatus, StateSource
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import KEY, TIMEOUT, create, make_client, make_dispatcher


async def _until(
    dispatcher: Dispatcher, condition: Callable[[DispatcherStatus], bool]
) -> DispatcherStatus:
    receiver = dispatcher.new_status_receiver()
    async with asyncio.timeout(TIMEOUT):
        async for status in receiver:
            if condition(status):
                return status
    raise AssertionError("the status receiver closed")


async def test_status_follows_a_service_restart(database: Path) -> None:
    service = LocalDispatchService(database=database, key=KEY)
    await service.start()
    api = make_client(service)
    try:
        await create(api, type="A", start_time="NOW", duration=None)
        async with asyncio.timeout(TIMEOUT), make_dispatcher(service) as dispatcher:
            synced = dispatcher.status
            assert synced.connected and synced.source is StateSource.SERVICE
            assert synced.dispatches == 1 and synced.running == {"A": 1}
            assert synced.last_full_sync is not None
            assert synced.last_sync_duration is not None

            await service.stop()
            down = await _until(dispatcher, lambda s: not s.connected)
            assert down.ready and down.disconnected_since is not None
            assert down.running == {"A": 1}  # keeps acting on what it holds
            errored = await _until(dispatcher, lambda s: s.failed_attempts >= 1)
            assert errored.last_error is not None
            assert errored.last_error_at is not None

            await service.start()  # same port, same database
            up = await _until(dispatcher, lambda s: s.connected)
            assert up.resyncs == 1 and up.reconnects == 1
            assert up.last_full_sync is not None
            assert up.last_full_sync > synced.last_full_sync
            assert up.disconnected_since is None and up.dispatches == 1
    finally:
        await api.disconnect()
        await service.stop()
