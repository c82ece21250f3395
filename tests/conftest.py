# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Shared test setup: a fake event loop whose clock also drives the wall clock.

Unit tests run on async-solipsism's event loop, where sleeping takes no real time:
when every task waits, the loop jumps straight to the next timer. The `clock`
fixture couples that jump to time-machine, so `datetime.now()` moves exactly as far
as the loop did. A test of a year-long recurrence thus runs in milliseconds, and a
test waiting for an event that never comes fails at once (the loop raises
`SleepForeverError`) instead of hanging.

Tests that talk real gRPC over loopback (under `integration/` and `local_service/`)
keep the ordinary event loop and the real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import async_solipsism
import pytest
import time_machine
from frequenz.client.dispatch.test.client import FakeClient

from frequenz.dispatch import _dispatcher as dispatcher_module
from frequenz.dispatch._bg_service import DispatchScheduler

from .helpers import MICROGRID, ApiClientFactory

REAL_LOOP_FOLDERS = {"integration", "local_service"}

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
"""When every fake-clock test starts: a Monday, noon UTC."""


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run unit tests on the fake event loop, real-network tests on a real one."""
    del config
    if REAL_LOOP_FOLDERS & set(item.path.parts):
        return {"real_loop": asyncio.new_event_loop}
    return {"solipsism": async_solipsism.EventLoop}


class FakeClock:
    """The test's view of the coupled loop and wall clocks."""

    def __init__(self, traveller: Any) -> None:
        self._traveller = traveller

    @staticmethod
    def now() -> datetime:
        """Return the (fake) current UTC time."""
        return datetime.now(tz=timezone.utc)

    @staticmethod
    async def advance(delta: timedelta) -> None:
        """Let `delta` pass: timers due meanwhile fire in order, at their time."""
        # The fake loop treats a sleep of a day or more as "forever": go in steps.
        remaining = delta.total_seconds()
        while remaining > 0:
            step = min(remaining, 12 * 3600.0)
            await asyncio.sleep(step)
            remaining -= step

    async def advance_to(self, when: datetime) -> None:
        """Let time pass until `when`."""
        await self.advance(when - self.now())

    def jump(self, delta: timedelta) -> None:
        """Move only the wall clock, as NTP or a suspended machine would."""
        self._traveller.shift(delta)


@contextlib.contextmanager
def coupled_clocks(loop: asyncio.AbstractEventLoop, start: datetime) -> Iterator[Any]:
    """Freeze the wall clock at `start` and make it follow `loop`'s fake clock.

    Yields:
        The time-machine traveller, to move the wall clock alone if needed.
    """
    selector_clock = loop._selector.clock  # type: ignore[attr-defined]  # pylint: disable=protected-access
    original_advance = selector_clock.advance
    with time_machine.travel(start, tick=False) as traveller:

        def advance(delta: float) -> None:
            original_advance(delta)
            traveller.shift(timedelta(seconds=delta))

        selector_clock.advance = advance
        try:
            yield traveller
        finally:
            selector_clock.advance = original_advance


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    """Freeze the wall clock at START and make it follow the fake loop's clock."""
    with coupled_clocks(asyncio.get_running_loop(), START) as traveller:
        yield FakeClock(traveller)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ApiClientFactory:
    """Make `Dispatcher` build a `FakeClient` instead of a real gRPC client."""
    factory = ApiClientFactory()
    monkeypatch.setattr(dispatcher_module, "DispatchApiClient", factory)
    return factory


@pytest.fixture
def client() -> FakeClient:
    """A fake dispatch API client."""
    return FakeClient()


@pytest.fixture
async def scheduler(
    clock: FakeClock, client: FakeClient
) -> AsyncIterator[DispatchScheduler]:
    """A scheduler on `client`, started and synced, on the fake clock."""
    del clock  # the fake clock must run before the scheduler starts
    service = DispatchScheduler(MICROGRID, client)
    service.start()
    await service.wait_for_initialization()
    yield service
    await service.stop()
