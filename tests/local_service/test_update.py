# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Updates with field masks through the real client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from frequenz.client.dispatch.types import (
    BatteryType,
    TargetCategories,
    TargetIds,
)
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from .conftest import (
    MICROGRID,
    CreateFn,
    auth_metadata,
    in_future,
    rpc_error,
)

if TYPE_CHECKING:
    from .conftest import Stub


_HOURLY = pb.RecurrenceRule.FREQUENCY_HOURLY


def _ts(when: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(when)
    return timestamp


_UPDATES: list[tuple[dict[str, Any], str, Any]] = [
    ({"start_time": in_future(9000)}, "start_time", in_future(9000)),
    ({"duration": timedelta(minutes=3)}, "duration", timedelta(minutes=3)),
    ({"duration": None}, "duration", None),
    ({"target": TargetIds(7)}, "target", TargetIds(7)),
    (
        {"target": TargetCategories(BatteryType.NA_ION)},
        "target",
        TargetCategories(BatteryType.NA_ION),
    ),
    ({"is_active": False}, "active", False),
    ({"active": False}, "active", False),
    ({"payload": {"new": True}}, "payload", {"new": True}),
]


@pytest.mark.parametrize(("new_fields", "attribute", "expected"), _UPDATES)
async def test_update_each_field(
    client: DispatchApiClient,
    create: CreateFn,
    new_fields: dict[str, Any],
    attribute: str,
    expected: Any,
) -> None:
    created = await create(payload={"old": 1})
    updated = await client.update(
        microgrid_id=MICROGRID, dispatch_id=created.id, new_fields=new_fields
    )
    assert getattr(updated, attribute) == expected
    assert updated.update_time > created.update_time
    assert updated.create_time == created.create_time
    assert updated.type == created.type
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == updated


_RECURRENCE_UPDATES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"recurrence.freq": Frequency.HOURLY}, {"frequency": Frequency.HOURLY}),
    ({"recurrence.frequency": Frequency.MONTHLY}, {"frequency": Frequency.MONTHLY}),
    ({"recurrence.interval": 5}, {"interval": 5}),
    (
        {"recurrence.end_criteria": EndCriteria(count=3)},
        {"end_criteria": EndCriteria(count=3)},
    ),
    (
        {"recurrence.end_criteria": EndCriteria(until=in_future(99_999))},
        {"end_criteria": EndCriteria(until=in_future(99_999))},
    ),
    ({"recurrence.byminutes": [5, 10]}, {"byminutes": [5, 10]}),
    ({"recurrence.byminutes": []}, {"byminutes": []}),
    ({"recurrence.byhours": [1, 23]}, {"byhours": [1, 23]}),
    (
        {"recurrence.byweekdays": [Weekday.SUNDAY]},
        {"byweekdays": [Weekday.SUNDAY]},
    ),
    ({"recurrence.bymonthdays": [1, -1]}, {"bymonthdays": [1, -1]}),
    ({"recurrence.bymonths": [12]}, {"bymonths": [12]}),
]


@pytest.mark.parametrize(("new_fields", "expected"), _RECURRENCE_UPDATES)
async def test_update_each_recurrence_field(
    client: DispatchApiClient,
    create: CreateFn,
    new_fields: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    original = RecurrenceRule(
        frequency=Frequency.DAILY,
        interval=1,
        end_criteria=EndCriteria(count=5),
        byminutes=[0],
        byhours=[12],
        bymonths=[3],
    )
    created = await create(recurrence=original)
    updated = await client.update(
        microgrid_id=MICROGRID, dispatch_id=created.id, new_fields=new_fields
    )
    assert vars(updated.recurrence) == vars(original) | expected
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == updated


async def test_update_several_fields_at_once(
    client: DispatchApiClient, create: CreateFn
) -> None:
    created = await create()
    # The combination the CLI sends for `update --frequency DAILY --by-hour 3`.
    updated = await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=created.id,
        new_fields={
            "recurrence.frequency": Frequency.DAILY,
            "recurrence.interval": 1,
            "recurrence.byhours": [3],
            "active": False,
        },
    )
    assert updated.recurrence.frequency == Frequency.DAILY
    assert updated.recurrence.byhours == [3]
    assert not updated.active
    assert updated.end_time is None


async def test_update_clears_end_criteria(
    stub: Stub, client: DispatchApiClient, create: CreateFn
) -> None:
    created = await create(
        recurrence=RecurrenceRule(
            frequency=Frequency.DAILY, interval=1, end_criteria=EndCriteria(count=2)
        )
    )
    request = pb.UpdateMicrogridDispatchRequest(
        microgrid_id=int(MICROGRID),
        dispatch_id=int(created.id),
        update_mask=FieldMask(paths=["recurrence.end_criteria"]),
    )
    await stub.UpdateMicrogridDispatch(request, metadata=auth_metadata())
    fetched = await client.get(microgrid_id=MICROGRID, dispatch_id=created.id)
    assert fetched.recurrence.end_criteria is None


async def test_update_time_strictly_increases(
    client: DispatchApiClient, create: CreateFn
) -> None:
    created = await create()
    times = [created.update_time]
    for index in range(5):
        updated = await client.update(
            microgrid_id=MICROGRID,
            dispatch_id=created.id,
            new_fields={"payload": {"n": index}},
        )
        times.append(updated.update_time)
    assert times == sorted(set(times))


@pytest.mark.parametrize(
    ("paths", "update", "field"),
    [
        ([], pb.UpdateMicrogridDispatchRequest.DispatchUpdate(), "update_mask"),
        (["type"], pb.UpdateMicrogridDispatchRequest.DispatchUpdate(), "update_mask"),
        (
            ["is_dry_run"],
            pb.UpdateMicrogridDispatchRequest.DispatchUpdate(),
            "update_mask",
        ),
        (
            ["start_time"],
            pb.UpdateMicrogridDispatchRequest.DispatchUpdate(
                start_time=_ts(datetime(2021, 5, 1, tzinfo=timezone.utc))
            ),
            "update.start_time",
        ),
        (
            ["target"],
            pb.UpdateMicrogridDispatchRequest.DispatchUpdate(),
            "update.target",
        ),
        (
            ["recurrence.freq"],
            pb.UpdateMicrogridDispatchRequest.DispatchUpdate(
                recurrence=pb.UpdateMicrogridDispatchRequest.DispatchUpdate.RecurrenceRuleUpdate(
                    freq=_HOURLY
                )
            ),
            "update.recurrence.interval",
        ),
        (
            ["payload", "recurrence.bymonths"],
            pb.UpdateMicrogridDispatchRequest.DispatchUpdate(
                recurrence=pb.UpdateMicrogridDispatchRequest.DispatchUpdate.RecurrenceRuleUpdate(
                    bymonths=[13]
                )
            ),
            "update.recurrence.bymonths[0]",
        ),
    ],
)
async def test_update_rejects_invalid_and_keeps_data(
    stub: Stub,
    client: DispatchApiClient,
    create: CreateFn,
    paths: list[str],
    update: pb.UpdateMicrogridDispatchRequest.DispatchUpdate,
    field: str,
) -> None:
    created = await create(payload={"keep": "me"})
    request = pb.UpdateMicrogridDispatchRequest(
        microgrid_id=int(MICROGRID),
        dispatch_id=int(created.id),
        update_mask=FieldMask(paths=paths),
        update=update,
    )
    error = await rpc_error(
        stub.UpdateMicrogridDispatch(request, metadata=auth_metadata())
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.details() or "")
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == created
