# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Wrong credentials and bad requests through the `Dispatcher`'s client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import grpc.aio
import pytest
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule

from frequenz.dispatch import Created, Dispatcher, Updated
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import (
    MICROGRID_ID,
    in_seconds,
    list_all,
    make_dispatcher,
    receive,
)


async def _rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_wrong_key_is_logged_and_retried(
    service: LocalDispatchService,
    client: DispatchApiClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    dispatcher = make_dispatcher(service, key="not-the-key")
    dispatcher.start()
    try:
        with pytest.raises(TimeoutError):
            await dispatcher.wait_for_initialization(timeout=timedelta(seconds=1.2))
        # Logged (naming the URL and the status) and retried; nothing crashed.
        errors = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("frequenz.dispatch._sync")
            and r.levelno >= logging.ERROR
        ]
        assert len(errors) >= 2, errors
        assert all("UNAUTHENTICATED" in e and service.url in e for e in errors)
        assert dispatcher.is_running

        # Its client gets UNAUTHENTICATED too, and nothing is stored.
        error = await _rpc_error(
            dispatcher.client.create(
                microgrid_id=MICROGRID_ID,
                type="AUTH",
                start_time="NOW",
                duration=None,
                target=[],
            )
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        error = await _rpc_error(
            dispatcher.client.get(microgrid_id=MICROGRID_ID, dispatch_id=1)
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert await list_all(client) == []
    finally:
        await dispatcher.stop()
    assert not dispatcher.is_running


async def test_bad_fields_are_rejected_and_change_nothing(
    dispatcher: Dispatcher, client: DispatchApiClient
) -> None:
    lifecycle = dispatcher.new_lifecycle_events_receiver("BAD")
    good = await dispatcher.client.create(
        microgrid_id=MICROGRID_ID,
        type="BAD",
        start_time=in_seconds(3600),
        duration=timedelta(minutes=5),
        target=[1, 2],
        payload={"keep": True},
    )
    assert isinstance(await receive(lifecycle), Created)
    before = await list_all(client)

    creations: dict[str, dict[str, Any]] = {
        "type": {"type": ""},
        "recurrence.byminutes": {
            "recurrence": RecurrenceRule(
                frequency=Frequency.MINUTELY, interval=1, byminutes=[75]
            )
        },
        "recurrence.interval": {
            "recurrence": RecurrenceRule(frequency=Frequency.HOURLY, interval=0)
        },
    }
    for field, fields in creations.items():
        arguments: dict[str, Any] = {
            "microgrid_id": MICROGRID_ID,
            "type": "BAD",
            "start_time": in_seconds(3600),
            "duration": timedelta(minutes=5),
            "target": [1],
        }
        arguments.update(fields)
        error = await _rpc_error(dispatcher.client.create(**arguments))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (error.details() or ""), (field, error.details())

    updates: dict[str, dict[str, Any]] = {
        "recurrence.byminutes": {"recurrence.byminutes": [99]},
        "start_time": {"start_time": datetime.now(timezone.utc) - timedelta(hours=1)},
    }
    for field, new_fields in updates.items():
        error = await _rpc_error(
            dispatcher.client.update(
                microgrid_id=MICROGRID_ID, dispatch_id=good.id, new_fields=new_fields
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (error.details() or ""), (field, error.details())

    # The stored data is untouched, and the Dispatcher heard of no change: the
    # next event it sends is the one of this valid update.
    assert await list_all(client) == before
    updated = await dispatcher.client.update(
        microgrid_id=MICROGRID_ID, dispatch_id=good.id, new_fields={"payload": {"x": 1}}
    )
    event = await receive(lifecycle)
    assert isinstance(event, Updated)
    assert event.dispatch.update_time == updated.update_time
    assert event.dispatch.payload == {"x": 1}
    assert len(await list_all(client)) == 1


async def test_unknown_dispatch_is_not_found(dispatcher: Dispatcher) -> None:
    error = await _rpc_error(
        dispatcher.client.get(microgrid_id=MICROGRID_ID, dispatch_id=424242)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _rpc_error(
        dispatcher.client.delete(microgrid_id=MICROGRID_ID, dispatch_id=424242)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
