# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A `Dispatcher` ready for a test: on a fake client, or on a local service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.test.client import FakeClient

from .._clock import Clock
from .._dispatcher import Dispatcher
from ._clock import FakeClock

if TYPE_CHECKING:
    from ..local_service import LocalDispatchService

__all__ = ["DispatcherHarness", "fake_dispatcher", "local_dispatcher"]

ClientT = TypeVar("ClientT", bound=DispatchApiClient)

_LOCAL_TIMEOUT = timedelta(seconds=10)
"""How long the local service may take to answer; reached only if it is broken."""


class DispatcherHarness(NamedTuple, Generic[ClientT]):
    """A running `Dispatcher` and the raw client a test drives the service with.

    Unpacks as `(dispatcher, client)`.
    """

    dispatcher: Dispatcher
    """The dispatcher under test, started and synced."""

    client: ClientT
    """A frequenz-client-dispatch client of the same service: create, update and
    delete dispatches with it (the `FakeClient` also has `set_dispatches`)."""


def _clock_of(clock: FakeClock | Clock | None) -> Clock | None:
    if isinstance(clock, FakeClock):
        return clock.now
    return clock


@asynccontextmanager
async def fake_dispatcher(
    *,
    microgrid_id: MicrogridId | int = 1,
    clock: FakeClock | Clock | None = None,
    client: FakeClient | None = None,
) -> AsyncIterator[DispatcherHarness[FakeClient]]:
    """Run a `Dispatcher` on the client's in-memory `FakeClient`.

    The dispatcher is started and synced on entry and stopped on exit. Changes
    made with the yielded client reach it through the fake update stream, as
    they would from the real service.

    Example:
        ```python
        import asyncio
        from datetime import datetime, timedelta, timezone

        from frequenz.dispatch import testing

        START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)

        async def main() -> None:
            with testing.FakeClock(START) as clock:
                async with testing.fake_dispatcher(clock=clock) as (dispatcher, client):
                    receiver = dispatcher.new_running_state_event_receiver("DEMO")
                    await dispatcher.client.create(
                        microgrid_id=1,
                        type="DEMO",
                        start_time=START + timedelta(hours=1),
                        duration=timedelta(minutes=15),
                        target=[1],
                    )
                    two_hours = timedelta(hours=2)
                    started = await testing.next_event(receiver, within=two_hours)
                    assert started.started
                    assert clock.now() == START + timedelta(hours=1)

        with asyncio.Runner(loop_factory=testing.EventLoop) as runner:
            runner.run(main())
        ```

    Args:
        microgrid_id: The microgrid the dispatcher follows.
        clock: The clock the scheduler reads: a `FakeClock` (entered), any
            `Clock`, or None for the wall clock.
        client: The fake client to use; a new, empty one if None.

    Yields:
        The running dispatcher and its fake client.
    """
    fake = FakeClient() if client is None else client
    dispatcher = Dispatcher(
        microgrid_id=microgrid_id, client=fake, clock=_clock_of(clock)
    )
    async with dispatcher:
        yield DispatcherHarness(dispatcher, fake)


@asynccontextmanager
async def local_dispatcher(
    service: LocalDispatchService,
    *,
    microgrid_id: MicrogridId | int = 1,
    clock: Clock | None = None,
    timeout: timedelta = _LOCAL_TIMEOUT,
) -> AsyncIterator[DispatcherHarness[DispatchApiClient]]:
    """Run a `Dispatcher` against a running in-process `LocalDispatchService`.

    This talks real gRPC over loopback, so it needs a real event loop and takes
    real time: use it for end-to-end checks, `fake_dispatcher` for schedules.
    On entry, the dispatcher is synced and its update stream subscribed, so every
    change made afterwards reaches it.

    Example:
        ```python
        import asyncio
        from datetime import datetime, timedelta, timezone

        from frequenz.client.common.microgrid import MicrogridId
        from frequenz.client.dispatch.types import TargetIds
        from frequenz.dispatch import testing
        from frequenz.dispatch.local_service import LocalDispatchService

        async def main() -> None:
            async with LocalDispatchService() as service:
                async with testing.local_dispatcher(service) as (dispatcher, client):
                    events = dispatcher.new_lifecycle_events_receiver("DEMO")
                    await client.create(
                        microgrid_id=MicrogridId(1),
                        type="DEMO",
                        start_time=datetime.now(timezone.utc) + timedelta(hours=1),
                        duration=timedelta(minutes=15),
                        target=TargetIds(1),
                    )
                    five_s = timedelta(seconds=5)
                    created = await testing.next_event(events, within=five_s)
                    assert created.dispatch.type == "DEMO"

        asyncio.run(main())
        ```

    Args:
        service: The service, started.
        microgrid_id: The microgrid the dispatcher follows.
        clock: The clock the scheduler reads; None for the wall clock.
        timeout: How long to wait for the first sync and the subscription.

    Yields:
        The running dispatcher and a separate raw client of the service.
    """

    def connect() -> DispatchApiClient:
        return DispatchApiClient(
            server_url=service.url,
            auth_key=service.key,
            sign_secret=service.sign_secret,
            call_timeout=timeout,
        )

    # Two connections, as an application and an operator's tool would have.
    own, client = connect(), connect()
    dispatcher = Dispatcher(microgrid_id=microgrid_id, client=own, clock=clock)
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            await dispatcher.__aenter__()
            await service.wait_for_subscribers(int(microgrid_id))
    except BaseException:
        await _close(dispatcher, own, client)
        raise
    try:
        yield DispatcherHarness(dispatcher, client)
    finally:
        await _close(dispatcher, own, client)


async def _close(dispatcher: Dispatcher, *clients: DispatchApiClient) -> None:
    try:
        await dispatcher.stop()
    finally:
        for client in clients:
            await client.disconnect()
