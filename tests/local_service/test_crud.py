# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Create, get and delete through the real client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
from frequenz.api.common.v1alpha8.microgrid.electrical_components.electrical_components_pb2 import (  # noqa: E501
    BatteryType as BatteryTypePB,
)
from frequenz.api.common.v1alpha8.microgrid.electrical_components.electrical_components_pb2 import (  # noqa: E501
    ElectricalComponentCategory as ElectricalComponentCategoryPB,
)
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory,
)
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from frequenz.client.dispatch.types import (
    BatteryType,
    DispatchId,
    EvChargerType,
    InverterType,
    TargetCategories,
    TargetIds,
)
from google.protobuf.timestamp_pb2 import Timestamp

from .conftest import (
    MICROGRID,
    OTHER_MICROGRID,
    CreateFn,
    auth_metadata,
    in_future,
    rpc_error,
)

if TYPE_CHECKING:
    from .conftest import Stub


async def test_create_and_get_round_trip(
    client: DispatchApiClient, create: CreateFn
) -> None:
    recurrence = RecurrenceRule(
        frequency=Frequency.WEEKLY,
        interval=2,
        end_criteria=EndCriteria(count=10),
        byminutes=[0, 30],
        byhours=[8],
        byweekdays=[Weekday.MONDAY, Weekday.FRIDAY],
        bymonths=[1, 6],
    )
    start = in_future(7200)
    before = datetime.now(timezone.utc)
    created = await create(
        type="CHARGE",
        start_time=start,
        duration=timedelta(minutes=15),
        target=TargetIds(4, 5),
        active=False,
        dry_run=True,
        payload={"power": 10.5, "nested": {"list": [1, "two"]}},
        recurrence=recurrence,
    )
    assert created.id == DispatchId(1)
    assert created.type == "CHARGE"
    assert created.start_time == start
    assert created.duration == timedelta(minutes=15)
    assert created.target == TargetIds(4, 5)
    assert (created.active, created.dry_run) == (False, True)
    assert created.payload == {"power": 10.5, "nested": {"list": [1, "two"]}}
    assert created.recurrence == recurrence
    assert created.create_time == created.update_time
    assert before <= created.create_time <= datetime.now(timezone.utc)
    assert created.end_time is None  # Recurring: no single end.

    fetched = await client.get(microgrid_id=MICROGRID, dispatch_id=created.id)
    assert fetched == created


async def test_create_sets_end_time_and_rounds_start(create: CreateFn) -> None:
    start = in_future() + timedelta(microseconds=700_000)
    created = await create(start_time=start, duration=timedelta(seconds=90))
    # Like the cloud service: start times are rounded to whole seconds.
    assert created.start_time == start.replace(microsecond=0) + timedelta(seconds=1)
    assert created.end_time == created.start_time + timedelta(seconds=90)

    indefinite = await create(duration=None)
    assert indefinite.duration is None
    assert indefinite.end_time is None


async def test_create_now(create: CreateFn) -> None:
    before = datetime.now(timezone.utc)
    created = await create(start_time="NOW", duration=timedelta(seconds=30))
    assert before <= created.start_time <= datetime.now(timezone.utc)
    assert created.end_time == created.start_time + timedelta(seconds=30)
    assert created.started


async def test_create_with_categories(create: CreateFn) -> None:
    target = TargetCategories(
        BatteryType.LI_ION,
        InverterType.PV,
        EvChargerType.DC,
        ElectricalComponentCategory.METER,
    )
    created = await create(target=target)
    assert created.target == target


async def test_ids_increase(create: CreateFn) -> None:
    ids = [int((await create()).id) for _ in range(3)]
    assert ids == [1, 2, 3]


def _create_request(**data: Any) -> pb.CreateMicrogridDispatchRequest:
    fields: dict[str, Any] = {
        "type": "TEST",
        "start_time": None,
        "duration": 60,
        "target": pb.TargetComponents(component_ids=pb.TargetComponents.IdSet(ids=[1])),
    }
    fields.update(data)
    request = pb.CreateMicrogridDispatchRequest(
        microgrid_id=int(MICROGRID), dispatch_data=pb.DispatchData(**fields)
    )
    if fields["start_time"] is None:
        request.dispatch_data.start_time.FromDatetime(in_future())
    return request


def _ts(when: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(when)
    return timestamp


_INVERTER = ElectricalComponentCategoryPB.ELECTRICAL_COMPONENT_CATEGORY_INVERTER
_LI_ION = BatteryTypePB.BATTERY_TYPE_LI_ION
_DAILY = pb.RecurrenceRule.FREQUENCY_DAILY
_WEEKLY = pb.RecurrenceRule.FREQUENCY_WEEKLY
_BAD_TARGET_CATEGORY = pb.TargetComponents(
    component_categories_types=pb.TargetComponents.CategoryTypeSet(
        categories=[
            pb.TargetComponents.CategoryAndType(category=_INVERTER, battery=_LI_ION)
        ]
    )
)
_DEEP_PAYLOAD = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": ""}, "dispatch_data.type"),
        ({"type": "   "}, "dispatch_data.type"),
        ({"start_time": _ts(datetime(2020, 1, 1, tzinfo=timezone.utc))}, "start_time"),
        ({"target": pb.TargetComponents()}, "dispatch_data.target"),
        ({"target": _BAD_TARGET_CATEGORY}, "battery"),
        (
            {"recurrence": pb.RecurrenceRule(freq=_DAILY, interval=0)},
            "dispatch_data.recurrence.interval",
        ),
        (
            {"recurrence": pb.RecurrenceRule(freq=_DAILY, interval=1, byhours=[24])},
            "dispatch_data.recurrence.byhours[0]",
        ),
        (
            {
                "recurrence": pb.RecurrenceRule(
                    freq=_WEEKLY, interval=1, bymonthdays=[1]
                )
            },
            "dispatch_data.recurrence.bymonthdays",
        ),
        (
            {
                "recurrence": pb.RecurrenceRule(
                    freq=_WEEKLY,
                    interval=1,
                    byweekdays=[pb.RecurrenceRule.WEEKDAY_UNSPECIFIED],
                )
            },
            "dispatch_data.recurrence.byweekdays[0]",
        ),
        (
            {
                "recurrence": pb.RecurrenceRule(
                    freq=cast(pb.RecurrenceRule.Frequency.ValueType, 9), interval=1
                )
            },
            "dispatch_data.recurrence.freq",
        ),
        (
            {
                "recurrence": pb.RecurrenceRule(
                    freq=_DAILY,
                    interval=1,
                    end_criteria=pb.RecurrenceRule.EndCriteria(count=0),
                )
            },
            "dispatch_data.recurrence.end_criteria.count",
        ),
    ],
)
async def test_create_rejects_invalid_fields(
    stub: Stub, client: DispatchApiClient, data: dict[str, Any], field: str
) -> None:
    error = await rpc_error(
        stub.CreateMicrogridDispatch(_create_request(**data), metadata=auth_metadata())
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.details() or "")
    pages = [list(page) async for page in client.list(MICROGRID)]
    assert pages == [[]]


async def test_create_requires_start_time(stub: Stub) -> None:
    request = _create_request()
    request.dispatch_data.ClearField("start_time")
    error = await rpc_error(
        stub.CreateMicrogridDispatch(request, metadata=auth_metadata())
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dispatch_data.start_time" in (error.details() or "")


@pytest.mark.parametrize(
    "payload",
    [
        {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
        {"list": [[[[[[1]]]]]]},
        {"big": "x" * (51 * 1024)},
    ],
)
async def test_create_rejects_bad_payload(
    create: CreateFn, payload: dict[str, Any]
) -> None:
    error = await rpc_error(create(payload=payload))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dispatch_data.payload" in (error.details() or "")


async def test_create_accepts_payload_at_depth_limit(create: CreateFn) -> None:
    payload = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    assert (await create(payload=payload)).payload == payload


async def test_delete(client: DispatchApiClient, create: CreateFn) -> None:
    first = await create()
    second = await create()
    await client.delete(microgrid_id=MICROGRID, dispatch_id=first.id)
    error = await rpc_error(client.get(microgrid_id=MICROGRID, dispatch_id=first.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=second.id) == second


async def test_delete_response(stub: Stub, create: CreateFn) -> None:
    created = await create()
    response = await stub.DeleteMicrogridDispatch(
        pb.DeleteMicrogridDispatchRequest(
            microgrid_id=int(MICROGRID), dispatch_id=int(created.id)
        ),
        metadata=auth_metadata(),
    )
    assert (response.microgrid_id, response.dispatch_id) == (1, int(created.id))


async def test_unknown_ids_are_not_found(
    client: DispatchApiClient, create: CreateFn
) -> None:
    created = await create()
    unknown = DispatchId(999)
    calls = [
        client.get(microgrid_id=MICROGRID, dispatch_id=unknown),
        client.update(
            microgrid_id=MICROGRID, dispatch_id=unknown, new_fields={"active": False}
        ),
        client.delete(microgrid_id=MICROGRID, dispatch_id=unknown),
        # A dispatch is only found in its own microgrid.
        client.get(microgrid_id=OTHER_MICROGRID, dispatch_id=created.id),
        client.delete(microgrid_id=OTHER_MICROGRID, dispatch_id=created.id),
    ]
    for call in calls:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "dispatch_id" in (error.details() or "")
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=created.id) == created
