# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Shared test setup: the test kit `frequenz.dispatch.testing`, as a plugin.

The kit's pytest plugin is loaded as a user's project would load it: `addopts`
in pyproject.toml has `-p frequenz.dispatch.testing`. Unit
tests run on the test kit's `EventLoop` (async-solipsism's, where sleeping takes
no real time) and the `clock` fixture is the kit's `dispatch_clock`: the
scheduler reads it as its injectable clock, and the wall clock (`datetime.now()`)
follows it. A test of a year-long recurrence thus runs in milliseconds, and a test
waiting for an event that never comes fails at once (the loop raises
`SleepForeverError`) instead of hanging.

Tests that talk real gRPC over loopback (under `integration/` and `local_service/`)
keep the ordinary event loop and the real clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import pytest
from frequenz.client.dispatch.test.client import FakeClient

from frequenz.dispatch import _dispatcher as dispatcher_module
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import EventLoop, FakeClock

from .helpers import MICROGRID, ApiClientFactory

REAL_LOOP_FOLDERS = {"integration", "local_service"}
REAL_LOOP_FIXTURES = {"local_dispatch_service", "local_dispatcher"}
"""The kit's fixtures that talk real gRPC (the kit's own plugin knows them too)."""

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
"""When every fake-clock test starts: a Monday, noon UTC."""


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run unit tests on the fake event loop, real-network tests on a real one.

    The project's own rule, by folder; it takes precedence over the plugin's
    (which picks by the kit's fixtures a test uses).
    """
    del config
    uses = set(getattr(item, "fixturenames", ()))
    if REAL_LOOP_FOLDERS & set(item.path.parts) or uses & REAL_LOOP_FIXTURES:
        return {"real_loop": asyncio.new_event_loop}
    return {"solipsism": EventLoop}


@pytest.fixture
def dispatch_start() -> datetime:
    """Start the kit's `dispatch_clock` at START."""
    return START


@pytest.fixture
def clock(dispatch_clock: FakeClock) -> FakeClock:
    """The kit's `dispatch_clock` (at START), under the name the tests use."""
    return dispatch_clock


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
    service = DispatchScheduler(MICROGRID, client, clock=clock.now)
    service.start()
    await service.wait_for_initialization()
    yield service
    await service.stop()


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the dispatch cache's SQLite connections execute."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield statements
