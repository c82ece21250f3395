# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Helpers shared by the unit tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.recurrence import RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds

MICROGRID = MicrogridId(1)

T = TypeVar("T")


def make_dispatch(
    dispatch_id: int,
    *,
    start_time: datetime,
    duration: timedelta | None = timedelta(minutes=10),
    type: str = "TEST",
    target: Any = None,
    active: bool = True,
    dry_run: bool = False,
    payload: dict[str, Any] | None = None,
    recurrence: RecurrenceRule | None = None,
    update_time: datetime | None = None,
    create_time: datetime | None = None,
) -> ClientDispatch:
    """Build a client dispatch, as the service would return it."""
    now = datetime.now(tz=timezone.utc)
    return ClientDispatch(
        id=DispatchId(dispatch_id),
        type=type,
        start_time=start_time,
        duration=duration,
        target=TargetIds(1, 2) if target is None else target,
        active=active,
        dry_run=dry_run,
        payload={} if payload is None else payload,
        recurrence=RecurrenceRule() if recurrence is None else recurrence,
        create_time=now if create_time is None else create_time,
        update_time=now if update_time is None else update_time,
    )


async def create(client: FakeClient, **kwargs: Any) -> ClientDispatch:
    """Create a dispatch through the fake service (so it goes through the stream)."""
    params: dict[str, Any] = {
        "microgrid_id": MICROGRID,
        "type": "TEST",
        "duration": timedelta(minutes=10),
        "target": TargetIds(1, 2),
    }
    params.update(kwargs)
    return await client.create(**params)


def drain(receiver: Receiver[T]) -> list[T]:
    """Return what a receiver holds right now, without waiting."""
    messages: list[T] = []
    while True:
        try:
            message = receiver.consume() if _ready_now(receiver) else None
        except Exception:
            break
        if message is None:
            break
        messages.append(message)
    return messages


def _ready_now(receiver: Receiver[Any]) -> bool:
    pending = getattr(receiver, "pending", None)
    if pending is None:
        raise TypeError(f"{receiver!r} cannot be drained without waiting")
    return bool(pending)


async def update(client: FakeClient, dispatch_id: Any, **new_fields: Any) -> None:
    """Update a dispatch through the fake service (so it goes through the stream)."""
    await client.update(
        microgrid_id=MICROGRID, dispatch_id=dispatch_id, new_fields=new_fields
    )


async def delete(client: FakeClient, dispatch_id: Any) -> None:
    """Delete a dispatch through the fake service (so it goes through the stream)."""
    await client.delete(microgrid_id=MICROGRID, dispatch_id=dispatch_id)


class ApiClientFactory:
    """Stands in for `DispatchApiClient`: records its arguments, gives a FakeClient."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> FakeClient:
        self.calls.append(kwargs)
        return self.client
