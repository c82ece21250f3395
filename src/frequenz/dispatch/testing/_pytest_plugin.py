# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The test kit's pytest fixtures; loaded only with `-p frequenz.dispatch.testing`.

Loading `frequenz.dispatch.testing` as a plugin (`-p frequenz.dispatch.testing`
on the command line or in `addopts`, or `pytest_plugins =
["frequenz.dispatch.testing"]` in a root `conftest.py`) brings this module in;
importing the library never does, so the library does not need pytest.

Tests that use `dispatch_clock` or `fake_dispatcher` (or carry the
`dispatch_fake_time` marker) run on the kit's fake-time
[`EventLoop`][frequenz.dispatch.testing.EventLoop]; tests that use
`local_dispatch_service` or `local_dispatcher` on a real one (gRPC needs real
sockets). This goes through pytest-asyncio's `pytest_asyncio_loop_factories`
hook, where a project's own implementation takes precedence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.test.client import FakeClient

from . import _harness
from ._clock import EventLoop, FakeClock, is_fake_time
from ._harness import DispatcherHarness

if TYPE_CHECKING:
    from ..local_service import LocalDispatchService

DEFAULT_START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
"""Where `dispatch_clock` starts unless `dispatch_start` is overridden: a Monday."""

_FAKE_TIME_FIXTURES = frozenset({"dispatch_clock", "fake_dispatcher"})
_REAL_TIME_FIXTURES = frozenset({"local_dispatch_service", "local_dispatcher"})
_MARKER = "dispatch_fake_time"


def pytest_configure(config: pytest.Config) -> None:
    """Register the kit's marker.

    Args:
        config: pytest's configuration.
    """
    config.addinivalue_line(
        "markers",
        f"{_MARKER}: run this test on frequenz.dispatch.testing's fake-time loop",
    )


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Pick the fake-time loop for the tests that use the kit's fake time.

    Args:
        config: pytest's configuration.
        item: The test.

    Returns:
        The loop factory for `item`.

    Raises:
        pytest.UsageError: If the test wants both fake time and a local service.
    """
    del config
    used = set(getattr(item, "fixturenames", ()))
    fake = bool(used & _FAKE_TIME_FIXTURES) or item.get_closest_marker(_MARKER)
    real = used & _REAL_TIME_FIXTURES
    if fake and real:
        raise pytest.UsageError(
            f"{item.nodeid}: the fake clock and the local service cannot be used "
            f"together (gRPC needs a real event loop); it uses {sorted(real)} and "
            "fake time"
        )
    if fake:
        return {"dispatch_fake_time": EventLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
def dispatch_start() -> datetime:
    """The instant `dispatch_clock` starts at; override it to start elsewhere.

    Returns:
        A timezone-aware instant.
    """
    return DEFAULT_START


@pytest.fixture
def dispatch_microgrid_id() -> MicrogridId:
    """The microgrid the kit's dispatchers follow; override it to change it.

    Returns:
        The microgrid id.
    """
    return MicrogridId(1)


@pytest.fixture
async def dispatch_clock(dispatch_start: datetime) -> AsyncIterator[FakeClock]:
    """A `FakeClock` at `dispatch_start`; the wall clock follows it.

    Args:
        dispatch_start: Where it starts.

    Yields:
        The clock, entered.
    """
    if not is_fake_time():
        pytest.fail(
            "dispatch_clock needs the fake-time loop: use pytest-asyncio >= 1.4 "
            "(its pytest_asyncio_loop_factories hook), or return "
            "frequenz.dispatch.testing.EventLoop from your own implementation of it",
            pytrace=False,
        )
    with FakeClock(dispatch_start) as clock:
        yield clock


@pytest.fixture
def fake_dispatch_client() -> FakeClient:
    """An empty in-memory `FakeClient` of the dispatch API.

    Returns:
        The client.
    """
    return FakeClient()


@pytest.fixture
async def fake_dispatcher(
    dispatch_clock: FakeClock,
    fake_dispatch_client: FakeClient,
    dispatch_microgrid_id: MicrogridId,
) -> AsyncIterator[DispatcherHarness[FakeClient]]:
    """A `Dispatcher` on `fake_dispatch_client` and `dispatch_clock`, synced.

    Args:
        dispatch_clock: The clock its scheduler reads.
        fake_dispatch_client: The client it uses.
        dispatch_microgrid_id: The microgrid it follows.

    Yields:
        `(dispatcher, client)`.
    """
    async with _harness.fake_dispatcher(
        microgrid_id=dispatch_microgrid_id,
        clock=dispatch_clock,
        client=fake_dispatch_client,
    ) as harness:
        yield harness


@pytest.fixture
async def local_dispatch_service() -> AsyncIterator[LocalDispatchService]:
    """A `LocalDispatchService` on an in-memory database, on a free loopback port.

    Needs the `local-service` extra.

    Yields:
        The running service.
    """
    from ..local_service import LocalDispatchService

    async with LocalDispatchService() as service:
        yield service


@pytest.fixture
async def local_dispatcher(
    local_dispatch_service: LocalDispatchService, dispatch_microgrid_id: MicrogridId
) -> AsyncIterator[DispatcherHarness[DispatchApiClient]]:
    """A `Dispatcher` on `local_dispatch_service` (real gRPC, real time), synced.

    Args:
        local_dispatch_service: The service.
        dispatch_microgrid_id: The microgrid it follows.

    Yields:
        `(dispatcher, client)`, the client a separate connection to the service.
    """
    async with _harness.local_dispatcher(
        local_dispatch_service, microgrid_id=dispatch_microgrid_id
    ) as harness:
        yield harness
