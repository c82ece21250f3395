# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""SQLite persistence: restarts, id allocation, atomic writes."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.types import DispatchId, TargetIds

from frequenz.dispatch.local_service import LocalDispatchService
from frequenz.dispatch.local_service._storage import (
    SCHEMA_VERSION,
    DispatchStorage,
    StorageError,
)

from .conftest import KEY, MICROGRID, in_future, make_client


async def _create_some(service: LocalDispatchService, count: int) -> list[int]:
    client = make_client(service)
    try:
        return [
            int(
                (
                    await client.create(
                        MICROGRID,
                        f"T{index}",
                        in_future(),
                        timedelta(minutes=1),
                        TargetIds(index),
                        payload={"index": index},
                        recurrence=RecurrenceRule(
                            frequency=Frequency.HOURLY, interval=2
                        ),
                    )
                ).id
            )
            for index in range(count)
        ]
    finally:
        await client.disconnect()


async def test_dispatches_survive_restart_and_ids_are_not_reused(
    tmp_path: Path,
) -> None:
    database = tmp_path / "dispatches.sqlite3"
    async with LocalDispatchService(database=database, key=KEY) as service:
        assert await _create_some(service, 3) == [1, 2, 3]
        client = make_client(service)
        before = [d async for page in client.list(MICROGRID) for d in page]
        # Deleting the highest id must not make it available again.
        await client.delete(microgrid_id=MICROGRID, dispatch_id=DispatchId(3))
        await client.disconnect()

    async with LocalDispatchService(database=str(database), key=KEY) as service:
        client = make_client(service)
        after = [d async for page in client.list(MICROGRID) for d in page]
        await client.disconnect()
        assert after == [d for d in before if d.id != DispatchId(3)]
        assert await _create_some(service, 1) == [4]


async def test_memory_database_is_private_to_each_start() -> None:
    async with LocalDispatchService(key=KEY) as service:
        await _create_some(service, 2)
    async with LocalDispatchService(key=KEY) as service:
        assert await _create_some(service, 1) == [1]


def _data() -> pb.DispatchData:
    data = pb.DispatchData(
        type="T",
        duration=5,
        target=pb.TargetComponents(component_ids=pb.TargetComponents.IdSet(ids=[1])),
    )
    data.start_time.FromSeconds(2_000_000_000)
    return data


def test_update_time_is_strictly_increasing(tmp_path: Path) -> None:
    storage = DispatchStorage(tmp_path / "db.sqlite3")
    try:
        stored = storage.insert(1, _data(), now_us=1_000)
        times = [stored.update_time_us]
        for _ in range(3):
            # A clock that stands still (or goes back) still yields new times.
            updated = storage.update(1, stored.dispatch_id, lambda d: d, now_us=500)
            assert updated is not None
            assert updated.create_time_us == 1_000
            times.append(updated.update_time_us)
        assert times == [1_000, 1_001, 1_002, 1_003]
    finally:
        storage.close()


def test_failed_update_changes_nothing(tmp_path: Path) -> None:
    storage = DispatchStorage(tmp_path / "db.sqlite3")
    try:
        stored = storage.insert(1, _data(), now_us=1_000)

        def change(data: pb.DispatchData) -> pb.DispatchData:
            raise ValueError("rejected")

        with pytest.raises(ValueError, match="rejected"):
            storage.update(1, stored.dispatch_id, change, now_us=2_000)
        assert storage.get(1, stored.dispatch_id) == stored
        # The connection is usable again: the transaction was rolled back.
        assert storage.delete(1, stored.dispatch_id) == stored
        assert storage.list(1) == []
    finally:
        storage.close()


def test_unknown_ids(tmp_path: Path) -> None:
    storage = DispatchStorage(tmp_path / "db.sqlite3")
    try:
        stored = storage.insert(1, _data(), now_us=1)
        assert storage.get(2, stored.dispatch_id) is None
        assert storage.update(2, stored.dispatch_id, lambda d: d, now_us=2) is None
        assert storage.delete(1, 99) is None
    finally:
        storage.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        DispatchStorage(path)


async def test_unusable_database_fails_start(tmp_path: Path) -> None:
    service = LocalDispatchService(database=tmp_path / "missing" / "db.sqlite3")
    with pytest.raises(sqlite3.OperationalError):
        await service.start()
    assert not service.is_running
