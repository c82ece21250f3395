# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The scheduler with a cache file: offline start, on-time runs, reconnect."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from frequenz.dispatch import Dispatcher
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._cache import DispatchCache
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .fake_service import ControllableClient
from .helpers import MICROGRID, ApiClientFactory, create
from .test_sync import (
    FAST_RETRY,
    Observed,
    _change_while_disconnected,
    _seed,
    advance_until,
    by_id,
    elapse,
    lifecycle,
    observed,
    running,
)


@asynccontextmanager
async def cached(
    client: ControllableClient, path: Path, **options: Any
) -> AsyncIterator[Observed]:
    """A started scheduler with a cache file (receivers made before the start)."""
    scheduler = DispatchScheduler(
        MICROGRID, client, backoff=FAST_RETRY, cache_file=path, **options
    )
    watched = Observed(scheduler, client)
    scheduler.start()
    try:
        yield watched
    finally:
        await scheduler.stop()


async def write_cache(client: ControllableClient, path: Path) -> None:
    """Sync a scheduler with a cache file once, then stop it."""
    async with cached(client, path) as writer:
        await writer.scheduler.wait_for_initialization(timeout=timedelta(seconds=5))


def load(path: Path) -> list[int]:
    cache = DispatchCache.open(path, MICROGRID)
    state = cache.load()
    cache.close()
    assert state is not None
    return sorted(int(d.id) for d in state.dispatches)


async def test_offline_start_runs_on_time_and_reconnect_matches_a_live_stream(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    await _seed(client, clock.now())
    await write_cache(client, path)
    assert load(path) == list(range(1, 9))

    client.service.break_streams()  # the service is unreachable from now on
    async with observed() as steady:
        await _seed(steady.client, clock.now())
        with caplog.at_level(logging.INFO):
            async with cached(client, path) as offline:
                # Returns at once, from the cache, with the service down.
                await offline.scheduler.wait_for_initialization(
                    timeout=timedelta(seconds=1)
                )
                await settle()
                assert clock.now() == START
                assert offline.scheduler.resyncs == 0
                assert offline.scheduler.cache_age == timedelta(0)
                assert "from the dispatch cache (8 dispatches, age 0:00:00)" in (
                    caplog.text
                )
                # The same Created events a live first sync gives.
                assert [lifecycle(e) for e in offline.lifecycle_events()] == [
                    lifecycle(e) for e in steady.lifecycle_events()
                ]

                # The starts come on time, from the cache alone.
                await elapse(clock, timedelta(minutes=1) - timedelta(milliseconds=1))
                assert offline.running_events() == []
                await elapse(clock, timedelta(milliseconds=1))
                starts = [running(m) for m in offline.running_events()]
                assert [(m[0], m[1]) for m in starts] == [
                    (i, True) for i in (1, 2, 3, 6, 8)
                ]
                assert starts == [running(m) for m in steady.running_events()]
                await elapse(clock, timedelta(minutes=1))

                changed_at = clock.now()
                for watched in (offline, steady):
                    await _change_while_disconnected(watched.client, changed_at)
                await elapse(clock, timedelta(seconds=5))
                assert offline.lifecycle_events() == []
                assert offline.running_events() == []

                client.service.reconnect()
                await advance_until(clock, lambda: offline.scheduler.resyncs == 1)
                offline_lifecycle, offline_running = by_id(
                    offline.lifecycle_events(), offline.running_events()
                )
                steady_lifecycle, steady_running = by_id(
                    steady.lifecycle_events(), steady.running_events()
                )
                # No duplicate Created, no second start of what runs (5, 6 are
                # untouched): exactly what the live stream sent.
                assert offline_lifecycle == steady_lifecycle
                assert offline_running == steady_running
                assert set(offline_lifecycle) == {1, 2, 3, 4, 7, 8, 9, 10}
                assert 6 not in offline_running

                # Then one timeline.
                await elapse(clock, timedelta(hours=6))
                assert [running(m) for m in offline.running_events()] == [
                    running(m) for m in steady.running_events()
                ]
    assert "now reconciled with the service" in caplog.text
    assert load(path) == [1, 3, 4, 5, 6, 8, 9, 10]


async def test_stream_changes_are_written_to_the_cache(
    clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    async with cached(client, path) as live:
        await live.scheduler.wait_for_initialization()
        created = [
            await create(client, start_time=clock.now() + timedelta(hours=1))
            for _ in range(5)
        ]
        await client.delete(microgrid_id=MICROGRID, dispatch_id=created[0].id)
        await elapse(clock, timedelta(seconds=1))
        # Written by the batch timer, while the scheduler still runs.
        assert load(path) == [int(d.id) for d in created[1:]]


async def test_require_service_waits_but_the_schedule_runs(
    clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    await _seed(client, clock.now())
    await write_cache(client, path)
    client.service.break_streams()
    async with cached(client, path, require_service=True) as offline:
        with pytest.raises(TimeoutError):
            await offline.scheduler.wait_for_initialization(
                timeout=timedelta(minutes=2)
            )
        # The cached schedule ran meanwhile.
        assert [(int(m.id), m.started) for m in offline.running_events()] == [
            (i, True) for i in (1, 2, 3, 6, 8)
        ]
        client.service.reconnect()
        await offline.scheduler.wait_for_initialization(timeout=timedelta(minutes=1))
        assert offline.running_events() == []  # nothing started twice


@pytest.mark.parametrize("problem", ["garbage", "too_old", "other_microgrid"])
async def test_unusable_cache_behaves_as_without_one(
    clock: FakeClock, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    await _seed(client, clock.now())
    options: dict[str, Any] = {}
    if problem == "garbage":
        path.write_bytes(b"\x00garbage" * 1000)
    else:
        await write_cache(client, path)
        await elapse(clock, timedelta(minutes=10))
    if problem == "too_old":
        options["cache_max_age"] = timedelta(minutes=5)
    scheduler_microgrid = 2 if problem == "other_microgrid" else 1
    client.service.break_streams()
    scheduler = DispatchScheduler(
        scheduler_microgrid, client, backoff=FAST_RETRY, cache_file=path, **options
    )
    scheduler.start()
    try:
        with pytest.raises(TimeoutError):
            await scheduler.wait_for_initialization(timeout=timedelta(seconds=10))
        assert scheduler.cache_age is None
        assert len(scheduler._schedule) == 0
    finally:
        await scheduler.stop()
    moved = [name for name in os.listdir(tmp_path) if name != "cache.sqlite3"]
    if problem == "too_old":
        assert not [name for name in moved if ".too" in name or "-20" in name]
    else:
        reason = "corrupt" if problem == "garbage" else "microgrid"
        assert any(name.startswith(f"cache.sqlite3.{reason}-") for name in moved)


async def test_bad_cache_arguments_are_named(api: ApiClientFactory) -> None:
    del api  # the Dispatcher builds a fake client
    with pytest.raises(TypeError, match="cache_file"):
        DispatchScheduler(1, ControllableClient(), cache_file=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_max_age"):
        DispatchScheduler(1, ControllableClient(), cache_max_age=timedelta(seconds=-1))
    with pytest.raises(TypeError, match="require_service"):
        Dispatcher(
            microgrid_id=1,
            server_url="grpc://127.0.0.1:1",
            key="k",
            require_service="yes",  # type: ignore[arg-type]
        )
