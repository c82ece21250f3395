# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Listing: every filter, sorting and pagination."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from frequenz.api.common.v1alpha8.pagination.pagination_params_pb2 import (
    PaginationParams,
)
from frequenz.api.common.v1alpha8.types.interval_pb2 import Interval
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory,
)
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.types import (
    BatteryType,
    Dispatch,
    DispatchId,
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


async def _ids(client: DispatchApiClient, **filters: Any) -> set[int]:
    microgrid = filters.pop("microgrid_id", MICROGRID)
    return {
        int(dispatch.id)
        async for page in client.list(microgrid, **filters)
        for dispatch in page
    }


@pytest.fixture
async def fleet(create: CreateFn) -> dict[str, Dispatch]:
    """Dispatches that differ in every filtered attribute."""
    base = in_future(3600)
    return {
        "charge": await create(
            type="BATTERY_CHARGE",
            start_time=base,
            duration=timedelta(minutes=30),
            target=TargetIds(1, 2),
        ),
        "discharge": await create(
            type="BATTERY_DISCHARGE",
            start_time=base + timedelta(hours=2),
            duration=timedelta(minutes=30),
            target=TargetCategories(BatteryType.LI_ION),
            active=False,
        ),
        "pv": await create(
            type="PV_LIMIT",
            start_time=base + timedelta(hours=4),
            duration=None,
            target=TargetCategories(ElectricalComponentCategory.INVERTER),
            dry_run=True,
        ),
        "daily": await create(
            type="daily #tag",
            start_time=base + timedelta(hours=6),
            duration=timedelta(minutes=5),
            target=TargetIds(3),
            recurrence=RecurrenceRule(frequency=Frequency.DAILY, interval=1),
        ),
        "elsewhere": await create(
            microgrid_id=OTHER_MICROGRID, type="BATTERY_CHARGE", start_time=base
        ),
    }


def _id(*dispatches: Dispatch) -> set[int]:
    return {int(dispatch.id) for dispatch in dispatches}


async def test_list_is_per_microgrid(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    assert await _ids(client) == _id(
        fleet["charge"], fleet["discharge"], fleet["pv"], fleet["daily"]
    )
    assert await _ids(client, microgrid_id=OTHER_MICROGRID) == _id(fleet["elsewhere"])


async def test_filter_by_target(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    charge, discharge, pv = fleet["charge"], fleet["discharge"], fleet["pv"]
    assert await _ids(client, target_components=[TargetIds(2, 9)]) == _id(charge)
    assert await _ids(client, target_components=[TargetIds(9)]) == set()
    # A category without type matches every type of it, and vice versa.
    batteries = TargetCategories(ElectricalComponentCategory.BATTERY)
    assert await _ids(client, target_components=[batteries]) == _id(discharge)
    na_ion = TargetCategories(BatteryType.NA_ION)
    assert await _ids(client, target_components=[na_ion]) == set()
    either = [TargetIds(1), TargetCategories(ElectricalComponentCategory.INVERTER)]
    assert await _ids(client, target_components=either) == _id(charge, pv)


async def test_filter_by_start_time(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    start = fleet["discharge"].start_time
    assert await _ids(client, start_from=start) == _id(
        fleet["discharge"], fleet["pv"], fleet["daily"]
    )
    assert await _ids(client, start_to=start) == _id(fleet["charge"])
    assert await _ids(
        client, start_from=start, start_to=start + timedelta(seconds=1)
    ) == _id(fleet["discharge"])


async def test_filter_by_end_time(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    charge, discharge = fleet["charge"], fleet["discharge"]
    assert charge.end_time is not None and discharge.end_time is not None
    # Dispatches without a computed end (indefinite or recurring) never end:
    # they pass any lower bound and fail any upper bound.
    assert await _ids(client, end_from=discharge.end_time) == _id(
        discharge, fleet["pv"], fleet["daily"]
    )
    assert await _ids(client, end_to=discharge.end_time) == _id(charge)
    assert await _ids(
        client, end_from=charge.end_time, end_to=discharge.end_time
    ) == _id(charge)


async def test_filter_by_flags(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    everything = await _ids(client)
    assert await _ids(client, active=False) == _id(fleet["discharge"])
    assert await _ids(client, active=True) == everything - _id(fleet["discharge"])
    assert await _ids(client, dry_run=True) == _id(fleet["pv"])
    assert await _ids(client, dry_run=False) == everything - _id(fleet["pv"])


async def test_filter_by_ids(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    wanted = [fleet["pv"].id, fleet["charge"].id, fleet["elsewhere"].id]
    assert await _ids(client, dispatch_ids=wanted) == _id(fleet["pv"], fleet["charge"])


@pytest.mark.parametrize(
    ("queries", "expected"),
    [
        (["#1"], {"charge"}),
        (["#3", "#4"], {"pv", "daily"}),
        (["#tag"], {"daily"}),  # Not an id: a type substring.
        (["BATTERY"], {"charge", "discharge"}),
        (["CHARGE"], {"charge", "discharge"}),
        (["DIS", "#3"], {"discharge", "pv"}),
        (["battery"], set()),  # Substring matching is case-sensitive.
        (["#5"], set()),  # Dispatch 5 is in another microgrid.
    ],
)
async def test_filter_by_queries(
    client: DispatchApiClient,
    fleet: dict[str, Dispatch],
    queries: list[str],
    expected: set[str],
) -> None:
    assert [int(d.id) for d in fleet.values()] == [1, 2, 3, 4, 5]
    wanted = {int(fleet[name].id) for name in expected}
    assert await _ids(client, filter_queries=queries) == wanted


async def test_filters_combine_with_and(
    client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    assert await _ids(client, filter_queries=["BATTERY"], active=True) == _id(
        fleet["charge"]
    )


def _timestamp(when: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(when)
    return timestamp


async def _raw_list(stub: Stub, **fields: Any) -> pb.ListMicrogridDispatchesResponse:
    request = pb.ListMicrogridDispatchesRequest(microgrid_id=int(MICROGRID), **fields)
    return await stub.ListMicrogridDispatches(request, metadata=auth_metadata())


async def test_filter_by_recurrence_and_update_time(
    stub: Stub, client: DispatchApiClient, fleet: dict[str, Dispatch]
) -> None:
    response = await _raw_list(stub, filter=pb.DispatchFilter(is_recurring=True))
    assert [d.metadata.dispatch_id for d in response.dispatches] == [4]
    response = await _raw_list(stub, filter=pb.DispatchFilter(is_recurring=False))
    assert sorted(d.metadata.dispatch_id for d in response.dispatches) == [1, 2, 3]

    updated = await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=fleet["pv"].id,
        new_fields={"payload": {"touched": True}},
    )
    interval = Interval(start_time=_timestamp(updated.update_time))
    response = await _raw_list(
        stub, filter=pb.DispatchFilter(update_time_interval=interval)
    )
    assert [d.metadata.dispatch_id for d in response.dispatches] == [3]


async def test_pagination_across_pages(
    stub: Stub, client: DispatchApiClient, create: CreateFn
) -> None:
    for _ in range(7):
        await create()
    pages = [
        [int(d.id) for d in page] async for page in client.list(MICROGRID, page_size=3)
    ]
    # Default order: newest first.
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]

    response = await _raw_list(stub, pagination_params=PaginationParams(page_size=3))
    assert response.pagination_info.total_items == 7
    token = response.pagination_info.next_page_token
    response = await _raw_list(
        stub, pagination_params=PaginationParams(page_token=token)
    )
    assert response.pagination_info.total_items == 7
    assert [d.metadata.dispatch_id for d in response.dispatches] == [4, 3, 2]


async def _walk(
    stub: Stub, sort_options: pb.SortOptions, between_pages: Any
) -> list[int]:
    """List page by page (size 2), calling `between_pages()` after the first."""
    ids: list[int] = []
    params = PaginationParams(page_size=2)
    while True:
        response = await _raw_list(
            stub, sort_options=sort_options, pagination_params=params
        )
        ids.extend(d.metadata.dispatch_id for d in response.dispatches)
        if len(ids) == 2:
            await between_pages()
        if not response.pagination_info.next_page_token:
            return ids
        params = PaginationParams(page_token=response.pagination_info.next_page_token)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # Newest first: the new 7 sorts before the cursor; 4 and 1 are gone.
        (pb.SORT_ORDER_DESCENDING, [6, 5, 3, 2]),
        # Oldest first: deleting the already listed 1 shifts nothing (3 is not
        # skipped), 4 is gone, and the new 7 comes last.
        (pb.SORT_ORDER_ASCENDING, [1, 2, 3, 5, 6, 7]),
    ],
)
async def test_page_tokens_survive_inserts_and_deletes(
    stub: Stub,
    client: DispatchApiClient,
    create: CreateFn,
    order: pb.SortOrder.ValueType,
    expected: list[int],
) -> None:
    for _ in range(6):
        await create()

    async def change() -> None:
        await create()
        await client.delete(microgrid_id=MICROGRID, dispatch_id=DispatchId(4))
        await client.delete(microgrid_id=MICROGRID, dispatch_id=DispatchId(1))

    sort_options = pb.SortOptions(
        sort_field=pb.SORT_FIELD_CREATE_TIME, sort_order=order
    )
    assert await _walk(stub, sort_options, change) == expected


async def test_pagination_with_concurrent_insert_through_client(
    client: DispatchApiClient, create: CreateFn
) -> None:
    for _ in range(5):
        await create()
    seen: list[int] = []
    inserted = False
    async for page in client.list(MICROGRID, page_size=2):
        seen.extend(int(d.id) for d in page)
        if not inserted:
            await create()  # Lands before the cursor in newest-first order.
            inserted = True
    assert seen == [5, 4, 3, 2, 1]


async def test_sort_options(stub: Stub, create: CreateFn) -> None:
    base = in_future()
    for offset in (3, 1, 2):
        await create(start_time=base + timedelta(hours=offset))
    by_start = pb.SortOptions(
        sort_field=pb.SORT_FIELD_START_TIME, sort_order=pb.SORT_ORDER_ASCENDING
    )
    ids: list[int] = []
    params = PaginationParams(page_size=1)
    while True:
        response = await _raw_list(
            stub, sort_options=by_start, pagination_params=params
        )
        ids.extend(d.metadata.dispatch_id for d in response.dispatches)
        if not response.pagination_info.next_page_token:
            break
        params = PaginationParams(page_token=response.pagination_info.next_page_token)
    assert ids == [2, 3, 1]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "eyJ2IjoxfQ",
        "eyJ2IjoxLCJhZnRlciI6WzEsMl0sInNpemUiOjEsInF1ZXJ5IjoiIn0",
    ],
)
async def test_invalid_page_token(stub: Stub, token: str) -> None:
    error = await rpc_error(
        _raw_list(stub, pagination_params=PaginationParams(page_token=token))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pagination_params.page_token" in (error.details() or "")


async def test_page_token_is_bound_to_its_query(stub: Stub, create: CreateFn) -> None:
    for _ in range(3):
        await create()
    response = await _raw_list(stub, pagination_params=PaginationParams(page_size=1))
    token = response.pagination_info.next_page_token
    error = await rpc_error(
        _raw_list(
            stub,
            filter=pb.DispatchFilter(is_active=True),
            pagination_params=PaginationParams(page_token=token),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pagination_params.page_token" in (error.details() or "")


async def test_invalid_filter_target(stub: Stub) -> None:
    error = await rpc_error(
        _raw_list(stub, filter=pb.DispatchFilter(targets=[pb.TargetComponents()]))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filter.targets[0]" in (error.details() or "")
