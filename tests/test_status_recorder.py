# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The status bookkeeping's calls for other parts: cache source, missed runs.

The offline cache sets `StateSource.CACHE` and the schedule reports missed runs
through these calls; until those parts call them, they are driven here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from frequenz.dispatch import StateSource
from frequenz.dispatch._status import ScheduleFacts, StatusRecorder

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_cache_then_service() -> None:
    clock = Clock()
    recorder = StatusRecorder(3, clock=clock)
    receiver = recorder.new_receiver()
    assert (await receiver.receive()).source is StateSource.NONE

    recorder.set_source(StateSource.CACHE)
    cached = await receiver.receive()
    assert cached.source is StateSource.CACHE and cached.ready
    assert not cached.connected
    assert not cached.is_healthy(T0, max_offline=timedelta(hours=1))

    started = recorder.on_listing()
    clock.now = T0 + timedelta(seconds=2)
    recorder.on_full_sync(started)
    synced = await receiver.receive()
    assert synced.source is StateSource.SERVICE and synced.connected
    assert synced.last_sync_duration == timedelta(seconds=2)
    assert synced.last_full_sync == T0 + timedelta(seconds=2)


async def test_missed_runs_are_counted_per_type() -> None:
    recorder = StatusRecorder(1)
    recorder.on_missed("A", 3)
    recorder.on_missed("B", 1)
    recorder.on_missed("A", 2)
    recorder.on_missed("A", 0)
    assert recorder.snapshot().missed_runs == {"A": 5, "B": 1}


async def test_schedule_counts_win_over_the_recorder() -> None:
    recorder = StatusRecorder(
        1, facts=lambda: ScheduleFacts(2, {"A": 1}, None, missed_runs={"A": 7})
    )
    recorder.on_missed("A", 1)
    status = recorder.snapshot()
    assert status.missed_runs == {"A": 7}
    assert status.dispatches == 2 and status.running == {"A": 1}


async def test_sync_duration_observers() -> None:
    clock = Clock()
    recorder = StatusRecorder(1, clock=clock)
    seen: list[float] = []
    recorder.sync_observers.append(seen.append)
    started = recorder.on_listing()
    clock.now += timedelta(milliseconds=250)
    recorder.on_full_sync(started)
    assert seen == [0.25]


async def test_errors_are_described_in_one_line() -> None:
    recorder = StatusRecorder(1)
    recorder.on_disconnected(ConnectionRefusedError("refused"), at=T0)
    status = recorder.snapshot()
    assert status.last_error == "ConnectionRefusedError: refused"
    assert status.last_error_at == T0 and status.disconnected_since == T0
    assert status.failed_attempts == 1
