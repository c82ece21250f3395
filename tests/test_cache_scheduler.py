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
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule

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


HOURLY = RecurrenceRule(frequency=Frequency.HOURLY, interval=1)
TEN_MINUTES = timedelta(minutes=10)


def missed_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Missed ")
    ]


async def test_runs_that_closed_while_down_are_missed_once_and_an_open_one_starts_late(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    first = clock.now() + timedelta(minutes=1)
    await create(client, start_time=first, duration=TEN_MINUTES, recurrence=HOURLY)
    await write_cache(client, path)  # synced, then the process stops at once
    stopped_at = clock.now()

    await elapse(clock, timedelta(hours=5, minutes=5))  # no process runs
    client.service.break_streams()
    with caplog.at_level(logging.WARNING):
        async with cached(client, path) as offline:
            await offline.scheduler.wait_for_initialization(
                timeout=timedelta(seconds=1)
            )
            await settle()
            started_at = clock.now()
            # The runs at +0h01 ... +4h01 closed while nothing ran: missed. The
            # one at +5h01 is still open: started late, with its true end.
            assert offline.scheduler.status.missed_runs == {"TEST": 5}
            assert [(m.started, m.until) for m in offline.running_events()] == [
                (True, first + timedelta(hours=5) + TEN_MINUTES)
            ]
            assert missed_records(caplog) == [
                f"Missed 5 run(s) of 1 dispatch(es): they ended before the process"
                f" got to them at {started_at.isoformat()} (the process was not"
                " running: the cached schedule was handled up to"
                f" {stopped_at.isoformat()})\n"
                f"  dispatch 1 (type 'TEST'): 5 run(s) missed, from"
                f" {first.isoformat()} to {(first + timedelta(hours=4)).isoformat()}"
            ]

            # The service's full list adds nothing: no second start, no second
            # count, no second record.
            client.service.reconnect()
            await advance_until(clock, lambda: offline.scheduler.resyncs == 1)
            assert offline.running_events() == []
            assert offline.scheduler.status.missed_runs == {"TEST": 5}
            await elapse(clock, timedelta(hours=1))
            assert [m.started for m in offline.running_events()] == [False, True]
            assert offline.scheduler.status.missed_runs == {"TEST": 5}
            assert len(missed_records(caplog)) == 1


async def test_missed_runs_count_from_when_the_previous_process_last_ran(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    first = clock.now() + timedelta(minutes=1)
    await create(client, start_time=first, duration=TEN_MINUTES, recurrence=HOURLY)
    async with cached(client, path) as writer:
        await writer.scheduler.wait_for_initialization(timeout=timedelta(seconds=5))
        # It runs three hours after its only full sync, then stops mid-run.
        await elapse(clock, timedelta(hours=3, minutes=5))
        assert writer.scheduler.status.missed_runs == {}
    handled = DispatchCache.open(path, MICROGRID)
    state = handled.load()
    handled.close()
    assert state is not None
    assert state.synced_at == first - timedelta(minutes=1)
    # The last instant its schedule was evaluated at: the start at +3h01.
    assert state.handled_until == first + timedelta(hours=3)

    await elapse(clock, timedelta(hours=2))
    client.service.break_streams()
    with caplog.at_level(logging.WARNING):
        async with cached(client, path) as offline:
            await offline.scheduler.wait_for_initialization(
                timeout=timedelta(seconds=1)
            )
            await settle()
            # Only +4h01 closed since: the runs the first process ran (or was
            # running, +3h01) are not missed.
            assert offline.scheduler.status.missed_runs == {"TEST": 1}
            assert [(m.started, m.until) for m in offline.running_events()] == [
                (True, first + timedelta(hours=5) + TEN_MINUTES)
            ]
    [record] = missed_records(caplog)
    assert f"1 run(s) missed, from {(first + timedelta(hours=4)).isoformat()}" in (
        record
    )


async def test_a_restart_within_a_window_misses_nothing(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    first = clock.now() + timedelta(minutes=1)
    await create(client, start_time=first, duration=TEN_MINUTES, recurrence=HOURLY)
    async with cached(client, path) as writer:
        await writer.scheduler.wait_for_initialization(timeout=timedelta(seconds=5))
        await elapse(clock, timedelta(minutes=3))
    await elapse(clock, timedelta(minutes=2))
    client.service.break_streams()
    with caplog.at_level(logging.WARNING):
        async with cached(client, path) as offline:
            await offline.scheduler.wait_for_initialization(
                timeout=timedelta(seconds=1)
            )
            await settle()
            assert offline.scheduler.status.missed_runs == {}
            # The run the first process started goes on, with its true end.
            assert [(m.started, m.until) for m in offline.running_events()] == [
                (True, first + TEN_MINUTES)
            ]
    assert missed_records(caplog) == []


async def test_a_scheduler_started_again_writes_the_cache_again(
    clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    client = ControllableClient()
    scheduler = DispatchScheduler(MICROGRID, client, cache_file=path)
    scheduler.start()
    await scheduler.wait_for_initialization(timeout=timedelta(seconds=5))
    first = await create(client, start_time=clock.now() + timedelta(hours=1))
    await settle()  # applied, not written yet: stop() writes it
    await scheduler.stop()
    assert load(path) == [int(first.id)]

    scheduler.start()
    try:
        await elapse(clock, timedelta(seconds=1))
        second = await create(client, start_time=clock.now() + timedelta(hours=1))
        await elapse(clock, timedelta(seconds=1))
    finally:
        await scheduler.stop()
    assert load(path) == [int(first.id), int(second.id)]
