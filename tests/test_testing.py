# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Tests of the test kit: the fake clock, and a scheduler that never spins."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from async_solipsism.exceptions import SleepForeverError
from frequenz.client.dispatch.test.client import FakeClient

from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import EventLoop, FakeClock, settle

from .conftest import START
from .helpers import MICROGRID, create

MINUTE = timedelta(minutes=1)


def wall() -> datetime:
    return datetime.now(tz=timezone.utc)


async def test_advance_moves_loop_and_wall_clock_together(clock: FakeClock) -> None:
    loop = asyncio.get_running_loop()
    loop_start = loop.time()
    assert clock.now() == START == wall()
    await clock.advance(timedelta(days=400))
    assert clock.now() == START + timedelta(days=400) == wall()
    assert loop.time() - loop_start == pytest.approx(400 * 86400)
    await clock.advance_to(START + timedelta(days=401, seconds=1))
    assert wall() == START + timedelta(days=401, seconds=1)
    await clock.advance_to(START)  # in the past: nothing happens
    assert clock.now() == START + timedelta(days=401, seconds=1)
    with pytest.raises(ValueError, match="negative"):
        await clock.advance(-MINUTE)


async def test_the_wall_clock_is_right_when_a_timer_fires(clock: FakeClock) -> None:
    seen: list[datetime] = []

    async def sleeper() -> None:
        await asyncio.sleep(90)
        seen.append(wall())

    task = asyncio.create_task(sleeper())
    await clock.advance(timedelta(hours=1))
    await task
    assert seen == [START + timedelta(seconds=90)]


async def test_jump_moves_the_wall_clock_alone(clock: FakeClock) -> None:
    loop = asyncio.get_running_loop()
    before = loop.time()
    clock.jump(timedelta(hours=2))
    assert loop.time() == before
    assert clock.now() == START + timedelta(hours=2) == wall()
    clock.jump(-timedelta(hours=3))
    assert wall() == START - timedelta(hours=1)


async def test_now_outside_the_context_is_an_error() -> None:
    fake = FakeClock(START)
    with pytest.raises(RuntimeError, match="outside"):
        fake.now()
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(START.replace(tzinfo=None))


class CountingClock:
    """A clock under the test's control that counts how often it is read."""

    def __init__(self, read: object) -> None:
        self.reads = 0
        self._read = read

    def __call__(self) -> datetime:
        self.reads += 1
        value: datetime = self._read()  # type: ignore[operator]
        return value


@pytest.mark.parametrize("speed", [0.0, 1e-6], ids=["frozen", "crawling"])
async def test_a_clock_behind_the_loop_does_not_make_the_timer_spin(
    speed: float,
) -> None:
    # The scheduler's clock is frozen (or crawls) while the loop advances, as a
    # wall clock frozen by time-machine under a fake loop does. The timer must
    # back off instead of waking up again and again.
    loop = asyncio.get_running_loop()
    loop_start = loop.time()
    t0 = wall()  # the real wall clock: no time-machine in this test
    clock = CountingClock(
        lambda: t0 + timedelta(seconds=(loop.time() - loop_start) * speed)
    )
    client = FakeClient()
    scheduler = DispatchScheduler(MICROGRID, client, clock=clock)
    scheduler.start()
    try:
        await scheduler.wait_for_initialization()
        await create(client, start_time=t0 + MINUTE)
        await settle()
        reads_before = clock.reads
        # Ten days of loop time: a timer re-arming every wake-up would read the
        # clock millions of times.
        for _ in range(20):
            await asyncio.sleep(12 * 3600)
        assert clock.reads - reads_before < 100
    finally:
        await scheduler.stop()


def test_a_frozen_clock_with_nothing_else_to_do_fails_fast() -> None:
    # The start can never come: the fake loop reports it instead of hanging.
    client = FakeClient()
    t0 = wall()
    scheduler = DispatchScheduler(MICROGRID, client, clock=lambda: t0)

    async def main() -> None:
        scheduler.start()
        await scheduler.wait_for_initialization()
        await create(client, start_time=t0 + MINUTE)
        receiver = scheduler.new_running_state_event_receiver("TEST")
        await receiver.receive()

    loop = EventLoop()
    try:
        with pytest.raises(SleepForeverError):
            loop.run_until_complete(main())
    finally:
        loop.run_until_complete(scheduler.stop())
        loop.close()
