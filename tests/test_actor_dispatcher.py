# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Tests of `ActorDispatcher`: actors started, updated and stopped from events.

Most tests feed hand-made running-state events (`Dispatch.with_running_state`)
through a plain channel, so each event arrives exactly when the test sends it. The
tests at the end drive the `ActorDispatcher` from a real `DispatchScheduler`.

Every dispatch carries its number in `payload["id"]`, so the `DispatchInfo` an
actor or the factory gets tells which dispatch it belongs to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

import pytest
from frequenz.channels import BroadcastChannel, Receiver
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.sdk.actor import Actor
from typing_extensions import override

from frequenz.dispatch import ActorDispatcher, Dispatch, DispatchInfo, MergeByType
from frequenz.dispatch._actor_dispatcher import _ManagedActor
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._dispatch import Window
from frequenz.dispatch.testing import FakeClock, settle

from .helpers import MICROGRID, create, make_dispatch

# frequenz-channels 1.12's BroadcastChannel builds the Broadcast it deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Please use BroadcastChannel instead:DeprecationWarning"
)

RETRY = timedelta(seconds=10)
"""The retry interval most tests use."""

SECOND = timedelta(seconds=1)


class RecordingActor(Actor):
    """An SDK actor that records its runs, the updates it reads and its stop."""

    def __init__(
        self,
        info: DispatchInfo,
        updates: Receiver[DispatchInfo],
        *,
        read_gate: asyncio.Event | None = None,
        stop_delay: float = 0.0,
    ) -> None:
        super().__init__(name=f"recording-{info.options.get('id')}")
        self.initial = info
        self.updates_receiver = updates
        self.updates: list[DispatchInfo] = []
        self.runs = 0
        self.stopped = False
        self._read_gate = read_gate
        self._stop_delay = stop_delay

    @property
    def dispatch_id(self) -> int:
        """The number of the dispatch this actor was created for."""
        value: int = self.initial.options["id"]
        return value

    @override
    async def _run(self) -> None:
        self.runs += 1
        try:
            if self._read_gate is not None:
                await self._read_gate.wait()
            async for info in self.updates_receiver:
                self.updates.append(info)
            # The updates receiver closed: keep running until stopped.
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.stopped = True
            if self._stop_delay:
                # Cleaning up takes a while.
                await asyncio.sleep(self._stop_delay)
            raise


class CrashingActor(RecordingActor):
    """An actor that is not restarted by the SDK when its `_run` fails.

    The first actor of each dispatch in `to_crash` fails at once; the actors
    created later run normally.
    """

    _restart_limit = 0

    def __init__(
        self, info: DispatchInfo, updates: Receiver[DispatchInfo], to_crash: set[int]
    ) -> None:
        super().__init__(info, updates)
        self._to_crash = to_crash

    @override
    async def _run(self) -> None:
        if self.dispatch_id in self._to_crash:
            self._to_crash.discard(self.dispatch_id)
            self.runs += 1
            raise RuntimeError(f"actor of dispatch {self.dispatch_id} crashed")
        await super()._run()


class EndingActor(RecordingActor):
    """An actor whose `_run` returns at once, the first time for each dispatch."""

    def __init__(
        self, info: DispatchInfo, updates: Receiver[DispatchInfo], to_end: set[int]
    ) -> None:
        super().__init__(info, updates)
        self._to_end = to_end

    @override
    async def _run(self) -> None:
        if self.dispatch_id in self._to_end:
            self._to_end.discard(self.dispatch_id)
            self.runs += 1
            return
        await super()._run()


class Factory:
    """An actor factory that records every call.

    It fails the next `failures` calls, and waits for `gates[n]` (if set) before
    creating the actor of dispatch `n`.
    """

    def __init__(
        self,
        make: Callable[[DispatchInfo, Receiver[DispatchInfo]], RecordingActor] = (
            RecordingActor
        ),
        *,
        failures: int = 0,
    ) -> None:
        self.make = make
        self.failures = failures
        self.gates: dict[int, asyncio.Event] = {}
        self.calls: list[tuple[datetime, DispatchInfo]] = []
        self.receivers: list[Receiver[DispatchInfo]] = []
        self.actors: list[RecordingActor] = []

    async def __call__(
        self, info: DispatchInfo, updates: Receiver[DispatchInfo]
    ) -> Actor:
        self.calls.append((datetime.now(tz=timezone.utc), info))
        self.receivers.append(updates)
        gate = self.gates.get(info.options["id"])
        if gate is not None:
            await gate.wait()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the factory failed")
        actor = self.make(info, updates)
        self.actors.append(actor)
        return actor

    def actors_of(self, dispatch_id: int) -> list[RecordingActor]:
        """Return the actors created for a dispatch, oldest first."""
        return [a for a in self.actors if a.dispatch_id == dispatch_id]

    def running(self) -> list[int]:
        """Return the dispatch numbers of the running actors, sorted."""
        return sorted(a.dispatch_id for a in self.actors if a.is_running)


def dispatch(dispatch_id: int, *, start: datetime, **payload: Any) -> Dispatch:
    """Return a dispatch whose payload carries its number."""
    return Dispatch(
        make_dispatch(
            dispatch_id,
            start_time=start,
            duration=timedelta(hours=1),
            payload={"id": dispatch_id, **payload},
        )
    )


def started(message: Dispatch) -> Dispatch:
    """Return a start event for a dispatch."""
    assert message.duration is not None
    return message.with_running_state(
        Window(message.start_time, message.start_time + message.duration)
    )


def stopped(message: Dispatch) -> Dispatch:
    """Return a stop event for a dispatch."""
    return message.with_running_state(None)


def info_of(message: Dispatch) -> DispatchInfo:
    """Return the `DispatchInfo` an actor should get for a dispatch."""
    return DispatchInfo(
        components=message.target, dry_run=message.dry_run, options=message.payload
    )


class Harness:
    """An `ActorDispatcher` fed through a plain channel."""

    def __init__(
        self,
        factory: Factory,
        *,
        retry_interval: timedelta = RETRY,
        dispatch_identity: Callable[[Dispatch], Any] | None = None,
    ) -> None:
        self._sender, receiver = BroadcastChannel[Dispatch](
            name="running-state-events", limit=1000
        )
        self.service = ActorDispatcher(
            factory,
            receiver,
            dispatch_identity=dispatch_identity,
            retry_interval=retry_interval,
        )

    async def send(self, *messages: Dispatch) -> None:
        """Send events, then let every task react."""
        for message in messages:
            await self._sender.send(message)
        await settle()

    async def __aenter__(self) -> Harness:
        self.service.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.service.stop()


async def test_start_event_creates_and_starts_actor(clock: FakeClock) -> None:
    factory = Factory()
    d1 = dispatch(1, start=clock.now(), mode="eco")
    async with Harness(factory) as harness:
        await harness.send(started(d1))

        assert [info for _, info in factory.calls] == [info_of(d1)]
        assert factory.calls[0][1] == DispatchInfo(
            components=d1.target, dry_run=False, options={"id": 1, "mode": "eco"}
        )
        assert isinstance(factory.receivers[0], Receiver)
        [actor] = factory.actors
        assert actor.is_running
        assert actor.runs == 1  # start() was called: its _run runs
        assert actor.updates_receiver is factory.receivers[0]
        assert actor.updates == []


async def test_update_reaches_only_that_dispatchs_actor(clock: FakeClock) -> None:
    factory = Factory()
    d1 = dispatch(1, start=clock.now())
    d2 = dispatch(2, start=clock.now())
    async with Harness(factory) as harness:
        await harness.send(started(d1), started(d2))
        assert factory.running() == [1, 2]

        d1_v2 = dispatch(1, start=clock.now(), version=2)
        await harness.send(started(d1_v2))

        [actor1] = factory.actors_of(1)
        [actor2] = factory.actors_of(2)
        assert actor1.updates == [info_of(d1_v2)]
        assert actor2.updates == []
        assert len(factory.calls) == 2  # an update, not a new actor

        d2_v3 = dispatch(2, start=clock.now(), version=3)
        await harness.send(started(d2_v3))
        assert actor1.updates == [info_of(d1_v2)]
        assert actor2.updates == [info_of(d2_v3)]
        assert factory.running() == [1, 2]


async def test_late_reader_gets_latest_update(clock: FakeClock) -> None:
    gate = asyncio.Event()
    factory = Factory(lambda info, rx: RecordingActor(info, rx, read_gate=gate))
    async with Harness(factory) as harness:
        await harness.send(started(dispatch(1, start=clock.now())))
        for version in range(2, 6):
            await harness.send(started(dispatch(1, start=clock.now(), version=version)))

        gate.set()
        await clock.advance(SECOND)

        [actor] = factory.actors
        assert actor.updates, "the actor read no update at all"
        assert actor.updates[-1] == info_of(dispatch(1, start=clock.now(), version=5))
        assert actor.is_running


async def test_stop_event_stops_actor(clock: FakeClock) -> None:
    factory = Factory()
    d1 = dispatch(1, start=clock.now())
    d2 = dispatch(2, start=clock.now())
    async with Harness(factory) as harness:
        await harness.send(started(d1), started(d2))
        await harness.send(stopped(d1))

        [actor1] = factory.actors_of(1)
        assert actor1.stopped
        assert not actor1.is_running
        assert factory.running() == [2]

        # A later start creates a fresh actor.
        await harness.send(started(d1))
        assert len(factory.actors_of(1)) == 2
        assert factory.running() == [1, 2]


async def test_stop_event_without_actor_is_ignored(clock: FakeClock) -> None:
    factory = Factory()
    async with Harness(factory) as harness:
        await harness.send(stopped(dispatch(1, start=clock.now())))
        await harness.send(started(dispatch(2, start=clock.now())))
        assert factory.running() == [2]
        assert harness.service.is_running
        assert [info.options["id"] for _, info in factory.calls] == [2]


async def test_failing_factory_is_retried_while_running(clock: FakeClock) -> None:
    t0 = clock.now()
    factory = Factory(failures=2)
    d1 = dispatch(1, start=t0)
    async with Harness(factory) as harness:
        await harness.send(started(d1))
        assert factory.actors == []

        await clock.advance(timedelta(minutes=5))

        assert [when for when, _ in factory.calls] == [t0, t0 + RETRY, t0 + 2 * RETRY]
        assert all(info == info_of(d1) for _, info in factory.calls)
        assert factory.running() == [1]


async def test_failing_factory_is_not_retried_after_stop(clock: FakeClock) -> None:
    t0 = clock.now()
    factory = Factory(failures=1000)
    d1 = dispatch(1, start=t0)
    async with Harness(factory) as harness:
        await harness.send(started(d1))
        await clock.advance(RETRY * 2.5)
        await harness.send(stopped(d1))
        await clock.advance(timedelta(minutes=5))

        assert [when for when, _ in factory.calls] == [t0, t0 + RETRY, t0 + 2 * RETRY]
        assert harness.service.is_running


async def test_newer_event_replaces_pending_retry(clock: FakeClock) -> None:
    t0 = clock.now()
    factory = Factory(failures=1)
    old = dispatch(1, start=t0, version=1)
    new = dispatch(1, start=t0, version=2)
    async with Harness(factory) as harness:
        await harness.send(started(old))
        await clock.advance(3 * SECOND)
        await harness.send(started(new))
        await clock.advance(timedelta(minutes=5))

        # The pending retry of the old version never happens: the new event is
        # handled instead.
        assert factory.calls == [(t0, info_of(old)), (t0 + 3 * SECOND, info_of(new))]
        [actor] = factory.actors
        assert actor.initial == info_of(new)
        assert actor.is_running


async def test_slow_factory_does_not_block_other_dispatch(clock: FakeClock) -> None:
    factory = Factory()
    factory.gates[1] = asyncio.Event()
    async with Harness(factory) as harness:
        await harness.send(started(dispatch(1, start=clock.now())))
        await harness.send(started(dispatch(2, start=clock.now())))
        await clock.advance(SECOND)

        assert factory.running() == [2]
        assert [info.options["id"] for _, info in factory.calls] == [1, 2]

        factory.gates[1].set()
        await settle()
        assert factory.running() == [1, 2]


async def test_stop_while_factory_is_slow_stops_new_actor(clock: FakeClock) -> None:
    factory = Factory()
    factory.gates[1] = asyncio.Event()
    d1 = dispatch(1, start=clock.now())
    async with Harness(factory) as harness:
        await harness.send(started(d1))
        await harness.send(stopped(d1))
        factory.gates[1].set()
        await clock.advance(SECOND)

        assert factory.running() == []
        assert all(not actor.is_running for actor in factory.actors)


async def test_crashing_actor_is_logged_and_recreated(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    to_crash = {1}
    factory = Factory(lambda info, rx: CrashingActor(info, rx, to_crash))
    caplog.set_level(logging.ERROR, logger="frequenz.dispatch")
    t0 = clock.now()
    async with Harness(factory) as harness:
        await harness.send(
            started(dispatch(1, start=t0)), started(dispatch(2, start=t0))
        )
        await clock.advance(SECOND)

        [first] = factory.actors_of(1)
        assert first.runs == 1
        assert not first.is_running
        assert any(
            r.name.startswith("frequenz.dispatch") and r.levelno >= logging.ERROR
            for r in caplog.records
        ), "the crash was not logged"
        # The ActorDispatcher and the other actor are unaffected.
        assert harness.service.is_running
        assert factory.running() == [2]
        d2_v2 = dispatch(2, start=t0, version=2)
        await harness.send(started(d2_v2))
        assert factory.actors_of(2)[0].updates == [info_of(d2_v2)]
        await harness.send(started(dispatch(3, start=t0)))
        assert factory.running() == [2, 3]

        # Recreated after the retry interval, while its dispatch runs.
        await clock.advance_to(t0 + RETRY + SECOND)
        assert len(factory.actors_of(1)) == 2
        assert [when for when, info in factory.calls if info.options["id"] == 1] == [
            t0,
            t0 + RETRY,
        ]
        assert factory.running() == [1, 2, 3]


async def test_actor_that_ends_is_recreated(clock: FakeClock) -> None:
    to_end = {1}
    factory = Factory(lambda info, rx: EndingActor(info, rx, to_end))
    t0 = clock.now()
    async with Harness(factory) as harness:
        await harness.send(started(dispatch(1, start=t0)))
        await clock.advance(SECOND)
        assert factory.running() == []
        assert harness.service.is_running

        await clock.advance_to(t0 + RETRY + SECOND)
        assert [when for when, _ in factory.calls] == [t0, t0 + RETRY]
        assert factory.running() == [1]


async def test_crashed_actor_not_recreated_after_stop(clock: FakeClock) -> None:
    to_crash = {1}
    factory = Factory(lambda info, rx: CrashingActor(info, rx, to_crash))
    d1 = dispatch(1, start=clock.now())
    async with Harness(factory) as harness:
        await harness.send(started(d1))
        await clock.advance(SECOND)
        await harness.send(stopped(d1))
        await clock.advance(RETRY * 5)
        assert len(factory.calls) == 1
        assert factory.running() == []


async def test_start_during_actor_shutdown_is_not_lost(clock: FakeClock) -> None:
    # Regression: a start event that arrived while the stopped actor was still
    # shutting down went to the finishing _ManagedActor and was lost.
    # The actor needs 2 s to clean up after its stop; the dispatch starts again
    # meanwhile (for example it was deactivated and re-activated).
    factory = Factory(lambda info, rx: RecordingActor(info, rx, stop_delay=2.0))
    d1 = dispatch(1, start=clock.now())
    async with Harness(factory) as harness:
        await harness.send(started(d1))
        await harness.send(stopped(d1))
        await clock.advance(SECOND)  # the actor is still stopping
        await harness.send(started(d1))
        await clock.advance(timedelta(seconds=10))

        assert len(factory.calls) == 2
        assert factory.running() == [1]


async def test_stop_stops_every_actor(clock: FakeClock) -> None:
    factory = Factory()
    harness = Harness(factory)
    async with harness:
        await harness.send(
            *(started(dispatch(n, start=clock.now())) for n in (1, 2, 3))
        )
        assert factory.running() == [1, 2, 3]
    assert not harness.service.is_running
    assert len(factory.actors) == 3
    assert all(actor.stopped and not actor.is_running for actor in factory.actors)


async def test_stop_with_pending_retry_ends_retries(clock: FakeClock) -> None:
    factory = Factory(failures=1000)
    harness = Harness(factory)
    async with harness:
        await harness.send(started(dispatch(1, start=clock.now())))
    await clock.advance(RETRY * 5)
    assert len(factory.calls) == 1
    assert not harness.service.is_running


async def test_synchronous_factory_is_accepted(clock: FakeClock) -> None:
    # Regression: `await factory(...)` on a plain (non-async) factory awaited the
    # returned Actor itself (a BackgroundService is awaitable), got None, and
    # never started it. The documented example passes such a factory.
    made: list[RecordingActor] = []

    def sync_factory(
        info: DispatchInfo, updates: Receiver[DispatchInfo]
    ) -> RecordingActor:
        actor = RecordingActor(info, updates)
        made.append(actor)
        return actor

    sender, receiver = BroadcastChannel[Dispatch](name="events", limit=10)
    service = ActorDispatcher(sync_factory, receiver)  # type: ignore[arg-type]
    service.start()
    try:
        await sender.send(started(dispatch(1, start=clock.now())))
        await settle()
        assert len(made) == 1
        assert made[0].is_running
    finally:
        await service.stop()


@pytest.mark.parametrize("factory", [None, 42, "factory"])
async def test_non_callable_factory_is_rejected(factory: Any) -> None:
    _, receiver = BroadcastChannel[Dispatch](name="unused")
    with pytest.raises(TypeError, match="actor_factory"):
        ActorDispatcher(factory, receiver)


@pytest.mark.parametrize(
    ("retry_interval", "error"),
    [
        (timedelta(0), ValueError),
        (timedelta(seconds=-5), ValueError),
        (60, TypeError),
        (None, TypeError),
    ],
)
async def test_bad_retry_interval_is_rejected(
    retry_interval: Any, error: type[Exception]
) -> None:
    _, receiver = BroadcastChannel[Dispatch](name="unused")
    with pytest.raises(error, match="retry_interval"):
        ActorDispatcher(Factory(), receiver, retry_interval=retry_interval)


async def test_non_callable_identity_is_rejected() -> None:
    _, receiver = BroadcastChannel[Dispatch](name="unused")
    with pytest.raises(TypeError, match="dispatch_identity"):
        ActorDispatcher(Factory(), receiver, dispatch_identity=5)  # type: ignore[arg-type]


# Driven by the scheduler


class Scheduled:
    """A `DispatchScheduler` on a `FakeClient`, and an `ActorDispatcher` on it."""

    def __init__(self, factory: Factory, **kwargs: Any) -> None:
        self.client = FakeClient()
        self.scheduler = DispatchScheduler(MICROGRID, self.client)
        self._factory = factory
        self._kwargs = kwargs
        self.service: ActorDispatcher | None = None

    async def __aenter__(self) -> Scheduled:
        self.scheduler.start()
        await self.scheduler.wait_for_initialization()
        merge = self._kwargs.pop("merge_strategy", None)
        receiver = self.scheduler.new_running_state_event_receiver(
            "TEST", merge_strategy=merge
        )
        self.service = ActorDispatcher(self._factory, receiver, **self._kwargs)
        self.service.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        assert self.service is not None
        await self.service.stop()
        await self.scheduler.stop()


async def test_scheduler_driven_lifecycle(clock: FakeClock) -> None:
    factory = Factory()
    t0 = clock.now()
    async with Scheduled(factory) as env:
        d = await create(
            env.client, start_time=t0 + timedelta(minutes=5), payload={"id": 1}
        )
        await clock.advance(timedelta(minutes=1))
        assert factory.calls == []

        await clock.advance_to(t0 + timedelta(minutes=5, seconds=1))
        assert [when for when, _ in factory.calls] == [t0 + timedelta(minutes=5)]
        assert factory.calls[0][1].options == {"id": 1}
        assert factory.running() == [1]

        await env.client.update(
            microgrid_id=MICROGRID,
            dispatch_id=d.id,
            new_fields={"payload": {"id": 1, "power": 10}},
        )
        await clock.advance(SECOND)
        [actor] = factory.actors
        assert [u.options for u in actor.updates] == [{"id": 1, "power": 10}]

        # The dispatch lasts 10 minutes.
        await clock.advance_to(t0 + timedelta(minutes=15, seconds=1))
        assert actor.stopped
        assert factory.running() == []
        assert len(factory.calls) == 1


@pytest.mark.parametrize(
    ("retry_minutes", "tried_at_minutes"),
    [
        (3, (0, 3, 6, 9)),
        # The retry due at minute 10 meets the end of the run: not tried.
        (5, (0, 5)),
    ],
)
async def test_scheduler_driven_retries_end_with_dispatch(
    clock: FakeClock, retry_minutes: int, tried_at_minutes: tuple[int, ...]
) -> None:
    factory = Factory(failures=1000)
    t0 = clock.now()
    retry_interval = timedelta(minutes=retry_minutes)
    async with Scheduled(factory, retry_interval=retry_interval) as env:
        await create(env.client, start_time=t0 + SECOND, payload={"id": 1})
        await clock.advance(timedelta(hours=1))
        # Runs for 10 minutes, tried until then and no more.
        assert [when - t0 - SECOND for when, _ in factory.calls] == [
            timedelta(minutes=m) for m in tried_at_minutes
        ]


async def test_scheduler_driven_merge_by_type_shares_one_actor(
    clock: FakeClock,
) -> None:
    factory = Factory()
    t0 = clock.now()
    strategy = MergeByType()
    async with Scheduled(
        factory, merge_strategy=strategy, dispatch_identity=strategy.identity
    ) as env:
        await create(
            env.client, start_time=t0 + timedelta(minutes=1), payload={"id": 1}
        )
        await create(
            env.client, start_time=t0 + timedelta(minutes=5), payload={"id": 2}
        )
        await clock.advance_to(t0 + timedelta(minutes=6))
        [actor] = factory.actors
        assert actor.is_running
        assert [u.options for u in actor.updates] == [{"id": 2}]

        # Dispatch 1 ends at 11 minutes: dispatch 2 still runs until 15.
        await clock.advance_to(t0 + timedelta(minutes=12))
        assert actor.is_running
        await clock.advance_to(t0 + timedelta(minutes=16))
        assert not actor.is_running
        assert len(factory.calls) == 1


class StopFailingActor(RecordingActor):
    """An actor whose `stop()` raises a given exception."""

    error: BaseException = RuntimeError("stop failed")

    @override
    async def stop(self, msg: str | None = None) -> None:
        await super().stop(msg)
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
async def test_stopping_lets_base_exceptions_through(
    clock: FakeClock, error: BaseException
) -> None:
    class Failing(StopFailingActor):
        pass

    Failing.error = error
    factory = Factory(Failing)
    manager = _ManagedActor(1, factory, RETRY)
    task = asyncio.create_task(manager.run())
    manager.want(started(dispatch(1, start=clock.now())))
    await settle()
    assert factory.running() == [1]
    with pytest.raises(type(error)):
        await manager._stop_actor("test")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_error_while_stopping_is_logged_and_swallowed(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    factory = Factory(StopFailingActor)
    manager = _ManagedActor(1, factory, RETRY)
    task = asyncio.create_task(manager.run())
    manager.want(started(dispatch(1, start=clock.now())))
    await settle()
    await manager._stop_actor("test")
    assert "failed while stopping" in caplog.text
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_no_retry_after_the_run_ended_before_its_stop_arrives(
    clock: FakeClock,
) -> None:
    t0 = clock.now()
    factory = Factory(failures=1000)
    d1 = dispatch(1, start=t0)
    async with Harness(factory) as harness:
        # A start whose run ends between two retries; its stop is delayed.
        await harness.send(d1.with_running_state(Window(t0, t0 + RETRY * 1.5)))
        await clock.advance(RETRY * 5)

        assert [when for when, _ in factory.calls] == [t0, t0 + RETRY]
        await harness.send(stopped(d1))
        assert factory.running() == []
