# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Issue 10: every request gets a proper status, everything stored reads back."""

from __future__ import annotations

import base64
import logging
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import DispatchId, TargetIds
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from frequenz.dispatch.local_service import LocalDispatchService, StorageError
from frequenz.dispatch.local_service._pagination import MAX_PAGE_BYTES
from frequenz.dispatch.local_service._validation import (
    MAX_TARGET_SIZE,
    MAX_TYPE_LENGTH,
)

from .conftest import (
    KEY,
    MICROGRID,
    CreateFn,
    auth_metadata,
    in_future,
    make_client,
    rpc_error,
    target_of,
)
from .test_auth import LIST_REQUEST, SECRET, signed_metadata
from .test_fuzz import deep_payload_request

if TYPE_CHECKING:
    from .conftest import Stub

HUGE = [2**63, 2**64 - 1]
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def _calls(stub: Stub, microgrid_id: int, dispatch_id: int) -> dict[str, Any]:
    data = pb.DispatchData(
        type="T",
        start_time=Timestamp(seconds=4_000_000_000),
        target=pb.TargetComponents(component_ids=pb.TargetComponents.IdSet(ids=[1])),
    )
    ids = {"microgrid_id": microgrid_id, "dispatch_id": dispatch_id}
    return {
        "create": stub.CreateMicrogridDispatch(
            pb.CreateMicrogridDispatchRequest(
                microgrid_id=microgrid_id, dispatch_data=data
            ),
            metadata=auth_metadata(),
        ),
        "list": stub.ListMicrogridDispatches(
            pb.ListMicrogridDispatchesRequest(microgrid_id=microgrid_id),
            metadata=auth_metadata(),
        ),
        "get": stub.GetMicrogridDispatch(
            pb.GetMicrogridDispatchRequest(**ids), metadata=auth_metadata()
        ),
        "update": stub.UpdateMicrogridDispatch(
            pb.UpdateMicrogridDispatchRequest(
                **ids,
                update=pb.UpdateMicrogridDispatchRequest.DispatchUpdate(
                    is_active=False
                ),
                update_mask=FieldMask(paths=["is_active"]),
            ),
            metadata=auth_metadata(),
        ),
        "delete": stub.DeleteMicrogridDispatch(
            pb.DeleteMicrogridDispatchRequest(**ids), metadata=auth_metadata()
        ),
    }


@pytest.mark.parametrize("huge", HUGE)
async def test_huge_microgrid_ids_are_invalid_arguments(stub: Stub, huge: int) -> None:
    for name, call in _calls(stub, huge, 1).items():
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert (error.details() or "").startswith("microgrid_id: "), name
    stream = stub.StreamMicrogridDispatches(
        pb.StreamMicrogridDispatchesRequest(microgrid_id=huge),
        metadata=auth_metadata(),
    )
    error = await rpc_error(stream.read())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("microgrid_id: ")


@pytest.mark.parametrize("huge", HUGE)
async def test_huge_dispatch_ids_are_not_found(stub: Stub, huge: int) -> None:
    calls = _calls(stub, 1, huge)
    await calls.pop("create")
    await calls.pop("list")
    for name, call in calls.items():
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, name
        assert (error.details() or "").startswith("dispatch_id: "), name


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"v":1,"after":[1,' + b"9" * 5000 + b'],"size":1,"query":"x"}',
        b"x" * 5000,
    ],
)
async def test_bad_page_tokens_are_invalid_arguments(stub: Stub, raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode()
    request = pb.ListMicrogridDispatchesRequest(microgrid_id=1)
    request.pagination_params.page_token = token
    error = await rpc_error(
        stub.ListMicrogridDispatches(request, metadata=auth_metadata())
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (error.details() or "")


async def test_query_with_thousands_of_digits(stub: Stub, create: CreateFn) -> None:
    await create()
    request = pb.ListMicrogridDispatchesRequest(microgrid_id=1)
    request.filter.queries.append("#" + "1" * 5000)
    response = await stub.ListMicrogridDispatches(request, metadata=auth_metadata())
    assert list(response.dispatches) == []


@pytest.mark.parametrize("body", [b"\xff\xff\xff", deep_payload_request(200)])
async def test_undecodable_requests_are_invalid_arguments(
    channel: grpc.aio.Channel, body: bytes
) -> None:
    create = channel.unary_unary(
        "/frequenz.api.dispatch.v1.MicrogridDispatchService/CreateMicrogridDispatch",
        None,
        None,
    )
    error = await rpc_error(create(body, metadata=auth_metadata()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("request: cannot be decoded")


@pytest.mark.parametrize("ts", ["1" * 4400, str(2**70), "-5", "1e9"])
async def test_absurd_signed_timestamps_are_unauthenticated(ts: str) -> None:
    async with (
        LocalDispatchService(key=KEY, sign_secret=SECRET) as service,
        grpc.aio.insecure_channel(target_of(service.url)) as channel,
    ):
        stub = dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)
        metadata = signed_metadata(ts=None)
        metadata = tuple((k, ts if k == "ts" else v) for k, v in metadata)
        error = await rpc_error(
            stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
        )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "invalid request timestamp" in (error.details() or "")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_nan_and_infinity_are_refused(
    client: DispatchApiClient, create: CreateFn, number: float
) -> None:
    client_error = await rpc_error(create(payload={"x": [1, {"y": number}]}))
    assert client_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "payload" in (client_error.details() or "")
    created = await create(payload={"x": 1})
    # Nothing unreadable was stored: the microgrid still lists.
    update_error = await rpc_error(
        client.update(
            microgrid_id=MICROGRID,
            dispatch_id=created.id,
            new_fields={"payload": {"x": number}},
        )
    )
    assert update_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update.payload" in (update_error.details() or "")
    listed = [d async for page in client.list(MICROGRID) for d in page]
    assert listed == [created]


async def test_end_times_past_year_9999_are_refused(
    client: DispatchApiClient, create: CreateFn
) -> None:
    error = await rpc_error(create(start_time=MAX_TIME, duration=timedelta(seconds=1)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("dispatch_data.duration: ")
    # Rounded up to the next second, the start itself is past 9999.
    late = MAX_TIME + timedelta(microseconds=600_000)
    error = await rpc_error(create(start_time=late, duration=None))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("dispatch_data.start_time: ")
    last = await create(start_time=MAX_TIME, duration=timedelta(0))
    assert await client.get(microgrid_id=MICROGRID, dispatch_id=last.id) == last
    assert [d async for page in client.list(MICROGRID) for d in page] == [last]
    update_error = await rpc_error(
        client.update(
            microgrid_id=MICROGRID,
            dispatch_id=last.id,
            new_fields={"duration": timedelta(hours=1)},
        )
    )
    assert (update_error.details() or "").startswith("update.duration: ")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "T" * (MAX_TYPE_LENGTH + 1)}, "dispatch_data.type"),
        (
            {"target": TargetIds(*range(1, MAX_TARGET_SIZE + 2))},
            "dispatch_data.target.component_ids",
        ),
        ({"payload": {"blob": "x" * 51 * 1024}}, "dispatch_data.payload"),
    ],
)
async def test_size_limits(
    create: CreateFn, fields: dict[str, Any], field: str
) -> None:
    error = await rpc_error(create(**fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(f"{field}: ")


async def test_at_the_size_limits_everything_is_accepted(create: CreateFn) -> None:
    created = await create(
        type="T" * MAX_TYPE_LENGTH, target=TargetIds(*range(1, MAX_TARGET_SIZE + 1))
    )
    assert created.type == "T" * MAX_TYPE_LENGTH


async def test_pages_are_cut_by_bytes(
    client: DispatchApiClient, stub: Stub, create: CreateFn
) -> None:
    # 90 dispatches of 48 kB: 4.3 MB, more than a default client accepts.
    created = [await create(payload={"blob": "x" * 48_000}) for _ in range(90)]
    request = pb.ListMicrogridDispatchesRequest(microgrid_id=1)
    request.pagination_params.page_size = 100
    sizes = []
    listed = 0
    while True:
        page = await stub.ListMicrogridDispatches(request, metadata=auth_metadata())
        sizes.append(page.ByteSize())
        listed += len(page.dispatches)
        if not page.pagination_info.next_page_token:
            break
        request.pagination_params.page_token = page.pagination_info.next_page_token
    assert listed == 90
    assert len(sizes) == 2
    assert max(sizes) <= MAX_PAGE_BYTES + 1024 < 4 * 1024 * 1024
    all_listed = [d async for page in client.list(MICROGRID) for d in page]
    assert sorted(int(d.id) for d in all_listed) == sorted(int(d.id) for d in created)


async def test_a_database_file_is_served_once(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    async with LocalDispatchService(database=database, key=KEY):
        second = LocalDispatchService(database=database, key=KEY)
        with pytest.raises(StorageError, match="already served by another service"):
            await second.start()
        assert not second.is_running
    # Free again once the first one stopped.
    async with LocalDispatchService(database=database, key=KEY) as third:
        assert third.is_running


async def test_database_files_are_private(tmp_path: Path) -> None:
    # The database, its WAL and shared memory (while open) and the lock.
    database = tmp_path / "db.sqlite3"
    async with LocalDispatchService(database=database, key=KEY) as service:
        client = make_client(service)
        try:
            await client.create(
                MICROGRID, "T", in_future(), timedelta(minutes=1), TargetIds(1)
            )
            names = (
                "db.sqlite3",
                "db.sqlite3-wal",
                "db.sqlite3-shm",
                "db.sqlite3.lock",
            )
            files = [tmp_path / name for name in names]
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            await client.disconnect()


async def test_rejections_are_logged_once_per_client_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="frequenz.dispatch.local_service")
    async with LocalDispatchService(key=KEY) as service:
        client = make_client(service, auth_key="wrong-key")
        try:
            for _ in range(200):
                error = await rpc_error(client.list(MICROGRID).__anext__())
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await client.disconnect()
        during = [r.getMessage() for r in caplog.records]
    assert len(during) == 1
    assert "Rejected call to" in during[0]
    assert "invalid API key" in during[0]
    after = [r.getMessage() for r in caplog.records][1:]
    assert len(after) == 1
    assert "Rejected 199 more calls from ipv4:127.0.0.1" in after[0]
    assert KEY not in caplog.text


async def test_nonces_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    metadata = signed_metadata()
    for attempt in ("first", "replay"):
        async with (
            LocalDispatchService(database=database, key=KEY, sign_secret=SECRET) as s,
            grpc.aio.insecure_channel(target_of(s.url)) as channel,
        ):
            stub = dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)
            call = stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
            if attempt == "first":
                await call
            else:
                error = await rpc_error(call)
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "replayed" in (error.details() or "")


def test_expired_nonces_are_forgotten(tmp_path: Path) -> None:
    from frequenz.dispatch.local_service import DispatchStorage

    storage = DispatchStorage(tmp_path / "db.sqlite3")
    try:
        now = time.time()
        storage.remember_nonce("old", now + 1, now)
        storage.remember_nonce("new", now + 100, now + 2)  # Forgets "old".
        assert storage.live_nonces(now) == [("new", now + 100)]
    finally:
        storage.close()


async def test_get_reads_back_what_create_stored(client: Any, create: CreateFn) -> None:
    created = await create(payload={"big": 2**60, "small": -1e-300})
    assert (
        await client.get(
            microgrid_id=MICROGRID, dispatch_id=DispatchId(int(created.id))
        )
        == created
    )
