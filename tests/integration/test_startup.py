# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A `Dispatcher` started while the service is down waits for it, loudly."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from frequenz.dispatch import Created
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import KEY, TIMEOUT, create, make_client, make_dispatcher, receive


async def _down_service(database: Path) -> LocalDispatchService:
    """A service that ran once (so its port is known) and is stopped now."""
    service = LocalDispatchService(database=database, key=KEY)
    await service.start()
    await service.stop()
    return service


def _sync_errors(caplog: pytest.LogCaptureFixture, url: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.name.startswith("frequenz.dispatch")
        and url in record.getMessage()
    ]


async def test_enter_waits_for_the_service_and_logs(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    service = await _down_service(database)
    dispatcher = make_dispatcher(service)
    dispatcher.start()
    enter = asyncio.create_task(dispatcher.__aenter__())
    try:
        with pytest.raises(TimeoutError):
            await dispatcher.wait_for_initialization(timeout=timedelta(seconds=1))
        # Still waiting, still retrying, and it said why, naming the URL.
        assert not enter.done()
        assert dispatcher.is_running
        errors = _sync_errors(caplog, service.url)
        assert errors, "no error naming the service URL was logged"
        assert "Cannot sync dispatches" in errors[0]

        await service.start()
        async with asyncio.timeout(TIMEOUT):
            assert await enter is dispatcher
        await dispatcher.wait_for_initialization(timeout=timedelta(seconds=1))

        # And it works.
        lifecycle = dispatcher.new_lifecycle_events_receiver("STARTUP")
        api = make_client(service)
        try:
            created = await create(api, type="STARTUP")
        finally:
            await api.disconnect()
        event = await receive(lifecycle)
        assert isinstance(event, Created)
        assert event.dispatch.id == created.id
    finally:
        enter.cancel()
        await dispatcher.stop()
        await service.stop()
    assert not dispatcher.is_running


async def test_cancelled_enter_leaves_nothing_running(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = await _down_service(database)
    dispatcher = make_dispatcher(service)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.7), dispatcher:
                pytest.fail("entered although the service is down")
        assert not dispatcher.is_running
    finally:
        await dispatcher.stop()
