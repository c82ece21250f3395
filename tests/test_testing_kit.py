# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The test kit as a user uses it: only `frequenz.dispatch.testing` and the API.

Every test here is written the way a user's test of their own code would be:
the kit's fixtures (loaded by `-p frequenz.dispatch.testing`, see pyproject.toml),
its harness and its bounded receive helpers; nothing private of the library.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import TargetIds
from frequenz.sdk.actor import Actor

from frequenz.dispatch import Dispatcher, DispatchInfo, MergeByType
from frequenz.dispatch.testing import (
    DispatcherHarness,
    EventLoop,
    FakeClock,
    Recorder,
    fake_dispatcher,
    next_event,
    no_event,
    settle,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DAILY = RecurrenceRule(frequency=Frequency.DAILY, interval=1)


async def create(dispatcher: Dispatcher, **fields: Any) -> Any:
    """Create a dispatch of microgrid 1 through the dispatcher's client."""
    arguments: dict[str, Any] = {
        "microgrid_id": 1,
        "type": "TEST",
        "duration": 10 * MINUTE,
        "target": [1],
    }
    arguments.update(fields)
    return await dispatcher.client.create(**arguments)


# A year of a daily recurrence, and an actor's reaction to an update


async def test_a_daily_dispatch_starts_365_times_in_a_year(
    fake_dispatcher: DispatcherHarness[FakeClient], dispatch_clock: FakeClock
) -> None:
    dispatcher, _ = fake_dispatcher
    start = dispatch_clock.now() + HOUR
    async with Recorder(
        dispatcher.new_running_state_event_receiver("TEST")
    ) as recorder:
        await create(dispatcher, start_time=start, duration=2 * HOUR, recurrence=DAILY)
        await dispatch_clock.advance(365 * DAY)
    starts = [d for d in recorder.messages if d.started]
    stops = [d for d in recorder.messages if not d.started]
    assert len(starts) == 365
    assert len(stops) == 365
    # Each start was sent during its own run: the wall clock followed the loop.
    assert [d.until for d in starts] == [start + n * DAY + 2 * HOUR for n in range(365)]


class PowerActor(Actor):
    """A user's actor: it applies the payload of every dispatch it is given."""

    def __init__(self, info: DispatchInfo, updates: Receiver[DispatchInfo]) -> None:
        super().__init__()
        self.applied: list[dict[str, Any]] = [info.options]
        self._updates = updates

    async def _run(self) -> None:
        async for info in self._updates:
            self.applied.append(info.options)


async def test_the_users_actor_reacts_to_an_update(
    fake_dispatcher: DispatcherHarness[FakeClient], dispatch_clock: FakeClock
) -> None:
    dispatcher, _ = fake_dispatcher
    actors: list[PowerActor] = []

    async def factory(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
        actors.append(PowerActor(info, updates))
        return actors[-1]

    await dispatcher.start_managing(
        "TEST", actor_factory=factory, merge_strategy=MergeByType()
    )
    dispatch = await create(
        dispatcher,
        start_time=dispatch_clock.now() + HOUR,
        duration=DAY,
        payload={"power": 1000},
    )
    await dispatch_clock.advance(2 * HOUR)
    [actor] = actors
    assert actor.is_running and actor.applied == [{"power": 1000}]

    await dispatcher.client.update(
        microgrid_id=1, dispatch_id=dispatch.id, new_fields={"payload": {"power": 5}}
    )
    await settle()
    assert actor.applied == [{"power": 1000}, {"power": 5}]
    assert actors == [actor]  # reconfigured, not restarted

    await dispatch_clock.advance(DAY)
    assert not actor.is_running


# Waits that fail with a clear message instead of hanging


async def test_next_event_fails_with_a_clear_message_when_nothing_comes(
    fake_dispatcher: DispatcherHarness[FakeClient], dispatch_clock: FakeClock
) -> None:
    dispatcher, _ = fake_dispatcher
    receiver = dispatcher.new_running_state_event_receiver("TEST")
    await create(dispatcher, start_time=dispatch_clock.now() + 30 * DAY)
    before = dispatch_clock.now()
    with pytest.raises(AssertionError) as failure:
        await next_event(receiver, within=7 * DAY)
    message = str(failure.value)
    assert "nothing received from" in message
    assert "running-state:TEST" in message
    assert "7 days" in message and "fake time" in message
    # It waited exactly the window, in fake time; the start still comes later.
    assert dispatch_clock.now() == before + 7 * DAY
    started = await next_event(receiver, within=30 * DAY)
    assert started.started and dispatch_clock.now() == before + 30 * DAY


async def test_next_event_fails_when_the_receiver_is_closed(
    dispatch_clock: FakeClock,
) -> None:
    async with fake_dispatcher(clock=dispatch_clock) as (dispatcher, _):
        receiver = dispatcher.new_running_state_event_receiver("TEST")
        waiting = asyncio.ensure_future(next_event(receiver, within=DAY))
        await settle()
    with pytest.raises(AssertionError, match="was closed while waiting"):
        await waiting


async def test_no_event_checks_silence_and_names_what_came(
    fake_dispatcher: DispatcherHarness[FakeClient], dispatch_clock: FakeClock
) -> None:
    dispatcher, _ = fake_dispatcher
    receiver = dispatcher.new_running_state_event_receiver("TEST")
    await create(dispatcher, start_time=dispatch_clock.now() + 2 * HOUR)
    await no_event(receiver, within=HOUR)
    with pytest.raises(AssertionError, match=r"received Dispatch\(.*expected nothing"):
        await no_event(receiver, within=2 * HOUR)
    with pytest.raises(ValueError, match="negative"):
        await no_event(receiver, within=-MINUTE)


# Never a busy loop, whatever the two clocks do


class CountingClock:
    """A scheduler clock under the test's control, counting how often it is read."""

    def __init__(self, now: datetime) -> None:
        self.value = now
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.value


async def test_wall_clock_frozen_while_the_loop_advances_fails_fast() -> None:
    # The scheduler's clock never moves, the loop does (as with a wall clock
    # frozen by time-machine under a fake loop, without the kit's FakeClock):
    # the start can never come. The wait must fail after its window, the
    # scheduler backing off meanwhile instead of waking up again and again.
    frozen = CountingClock(datetime.now(timezone.utc))
    async with fake_dispatcher(clock=frozen) as (dispatcher, _):
        receiver = dispatcher.new_running_state_event_receiver("TEST")
        await create(dispatcher, start_time=frozen.value + MINUTE)
        await settle()
        reads_before = frozen.reads
        with pytest.raises(AssertionError, match="within 30 days"):
            await next_event(receiver, within=30 * DAY)
        # A timer re-arming on every wake-up would read it millions of times;
        # backed off, it looks a few times per day waited.
        assert frozen.reads - reads_before < 30 * 10


async def test_wall_clock_moving_while_the_loop_is_frozen_does_not_spin() -> None:
    # The reverse: the wall clock runs (here: an hour per read) while the loop's
    # time stands still, because the test only lets ready tasks run.
    running = CountingClock(datetime.now(timezone.utc))
    loop = asyncio.get_running_loop()
    async with fake_dispatcher(clock=running) as (dispatcher, _):
        receiver = dispatcher.new_running_state_event_receiver("TEST")
        # A window long enough to be still open when the loop moves again (one
        # that closed meanwhile would be a missed run, not sent).
        await create(dispatcher, start_time=running.value + 5 * HOUR, duration=30 * DAY)
        frozen_at = loop.time()
        reads_before = running.reads
        for _ in range(50):
            running.value += HOUR
            await settle()
        assert loop.time() == frozen_at
        assert running.reads - reads_before < 10  # nobody polls the clock
        # Once the loop moves, the scheduler wakes up and sends the start.
        started = await next_event(receiver, within=DAY)
        assert started.started


async def test_fake_clock_jump_then_advance_sends_what_became_due(
    dispatch_clock: FakeClock,
) -> None:
    async with fake_dispatcher(clock=dispatch_clock) as (dispatcher, _):
        receiver = dispatcher.new_running_state_event_receiver("TEST")
        start = dispatch_clock.now() + HOUR
        await create(dispatcher, start_time=start, duration=DAY)
        await settle()  # the scheduler has it, its timer armed for in an hour
        dispatch_clock.jump(2 * HOUR)  # the wall clock alone: the loop stands
        # Noticed at the latest when the timer wakes, an hour of loop time on.
        started = await next_event(receiver, within=HOUR)
        assert started.started
        assert start + HOUR <= dispatch_clock.now() <= start + 2 * HOUR


# The harness and `Dispatcher(client=...)`


async def test_fake_dispatcher_uses_the_given_client_and_microgrid(
    dispatch_clock: FakeClock,
) -> None:
    client = FakeClient()
    async with fake_dispatcher(
        microgrid_id=7, clock=dispatch_clock, client=client
    ) as harness:
        dispatcher, same = harness
        assert same is client and harness.client is client
        events = dispatcher.new_lifecycle_events_receiver("TEST")
        await client.create(
            microgrid_id=MicrogridId(7),
            type="TEST",
            start_time=dispatch_clock.now() + HOUR,
            duration=HOUR,
            target=TargetIds(1),
        )
        created = await next_event(events, within=MINUTE)
        assert created.dispatch.type == "TEST"
    assert not dispatcher.is_running


def test_dispatcher_client_keyword_rejects_bad_combinations() -> None:
    with pytest.raises(ValueError, match="either client or connection settings"):
        Dispatcher(microgrid_id=1, client=FakeClient(), server_url="grpc://x")
    with pytest.raises(ValueError, match="key, sign_secret"):
        Dispatcher(microgrid_id=1, client=FakeClient(), key="k", sign_secret="s")
    with pytest.raises(TypeError, match="client must be a"):
        Dispatcher(microgrid_id=1, client="grpc://x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="server_url must be"):
        Dispatcher(microgrid_id=1, key="k")
    assert isinstance(Dispatcher(microgrid_id=1, client=FakeClient()), Dispatcher)


def test_fake_clock_refuses_a_real_event_loop() -> None:
    async def main() -> None:
        with FakeClock(datetime(2026, 1, 5, tzinfo=timezone.utc)):
            pass  # pragma: no cover

    with pytest.raises(RuntimeError, match="needs async-solipsism's event loop"):
        asyncio.run(main())


def test_the_kit_runs_outside_pytest_on_its_event_loop() -> None:
    async def main() -> int:
        with FakeClock(datetime(2026, 1, 5, tzinfo=timezone.utc)) as clock:
            async with fake_dispatcher(clock=clock) as (dispatcher, _):
                receiver = dispatcher.new_running_state_event_receiver("TEST")
                await create(dispatcher, start_time=clock.now() + DAY, recurrence=DAILY)
                async with Recorder(receiver) as recorder:
                    await clock.advance(100 * DAY)
                return len([d for d in recorder.messages if d.started])

    with asyncio.Runner(loop_factory=EventLoop) as runner:
        assert runner.run(main()) == 100


def test_importing_the_kit_does_not_need_pytest() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # any `import pytest` now fails
        import frequenz.dispatch.testing as kit
        assert kit.fake_dispatcher and kit.next_event
        print("imported")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


# The opt-in plugin in a user's project

USER_TESTS = """
import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.dispatch import testing

DAILY = RecurrenceRule(frequency=Frequency.DAILY, interval=1)


@pytest.fixture
def dispatch_start():
    return datetime(2030, 6, 1, tzinfo=timezone.utc)


async def test_a_year_of_daily_starts(fake_dispatcher, dispatch_clock):
    dispatcher, client = fake_dispatcher
    assert dispatch_clock.now() == datetime(2030, 6, 1, tzinfo=timezone.utc)
    assert datetime.now(timezone.utc) == dispatch_clock.now()
    receiver = dispatcher.new_running_state_event_receiver("USER")
    async with testing.Recorder(receiver) as recorder:
        await dispatcher.client.create(
            microgrid_id=1, type="USER",
            start_time=dispatch_clock.now() + timedelta(hours=1),
            duration=timedelta(hours=1), target=[1], recurrence=DAILY,
        )
        await dispatch_clock.advance(timedelta(days=365))
    assert len([d for d in recorder.messages if d.started]) == 365


async def test_waiting_for_what_cannot_come(fake_dispatcher):
    dispatcher, _ = fake_dispatcher
    receiver = dispatcher.new_running_state_event_receiver("NEVER")
    await testing.next_event(receiver, within=timedelta(days=3))


async def test_plain_async_tests_keep_a_real_loop():
    assert not testing.is_fake_time()


def test_a_sync_test_is_untouched(fake_dispatch_client):
    assert fake_dispatch_client.dispatches(1) == []


async def test_the_local_service(local_dispatcher):
    dispatcher, client = local_dispatcher
    assert not testing.is_fake_time()
    events = dispatcher.new_lifecycle_events_receiver("USER")
    await dispatcher.client.create(
        microgrid_id=1, type="USER",
        start_time=datetime.now(timezone.utc) + timedelta(hours=1),
        duration=timedelta(minutes=5), target=[1],
    )
    created = await testing.next_event(events, within=timedelta(seconds=10))
    assert created.dispatch.type == "USER"
"""


def test_the_opt_in_plugin_in_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user=USER_TESTS)
    # Without the plugin, the kit's fixtures do not exist.
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "fixture 'fake_dispatcher' not found" in without.stdout.str()

    result = pytester.runpytest_subprocess(
        "-p", "frequenz.dispatch.testing", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_waiting_for_what_cannot_come*",
            "*AssertionError: nothing received from *running-state:NEVER"
            " within 3 days, 0:00:00 (fake time)",
        ]
    )


async def test_local_dispatcher_fixture_talks_to_the_local_service(
    local_dispatcher: DispatcherHarness[Any],
) -> None:
    # Real gRPC over loopback, on a real loop: bounded waits in real seconds.
    dispatcher, client = local_dispatcher
    events = dispatcher.new_lifecycle_events_receiver("TEST")
    created = await client.create(
        microgrid_id=MicrogridId(1),
        type="TEST",
        start_time=datetime.now(timezone.utc) + HOUR,
        duration=HOUR,
        target=TargetIds(1),
    )
    event = await next_event(events, within=timedelta(seconds=10))
    assert event.dispatch.id == created.id
    await client.delete(microgrid_id=MicrogridId(1), dispatch_id=created.id)
    deleted = await next_event(events, within=timedelta(seconds=10))
    assert type(deleted).__name__ == "Deleted"
