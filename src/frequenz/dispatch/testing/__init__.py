# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A test kit for code that uses this library: fake time, fake service, fixtures.

Needs the `testing` extra (`pip install frequenz-dispatch[testing]`).

* **Fake time.** [`FakeClock`][frequenz.dispatch.testing.FakeClock] drives a test
  that runs on [`EventLoop`][frequenz.dispatch.testing.EventLoop],
  async-solipsism's loop, where sleeping takes no real time (when every task
  waits, the loop jumps to the next timer). It keeps the two clocks a test has
  together without touching any private part of the loop: the scheduler's
  injectable clock (`FakeClock.now`) and the wall clock (frozen with
  time-machine, moved whenever a timer fires). `advance(timedelta)`,
  `advance_to(datetime)` let time pass; `jump(timedelta)` moves the wall clock
  alone. A year-long recurrence is tested in milliseconds.
* **A dispatcher to test against.**
  [`fake_dispatcher`][frequenz.dispatch.testing.fake_dispatcher] runs a
  `Dispatcher` on the client's in-memory `FakeClient`, on the fake clock;
  [`local_dispatcher`][frequenz.dispatch.testing.local_dispatcher] runs one on
  an in-process `LocalDispatchService` over real gRPC (real time). Both build
  on `Dispatcher(..., client=..., clock=...)`.
* **Waits that fail instead of hanging.**
  [`next_event`][frequenz.dispatch.testing.next_event] /
  [`no_event`][frequenz.dispatch.testing.no_event] wait a bounded (fake) time
  and raise `AssertionError` naming the receiver and the window;
  [`Recorder`][frequenz.dispatch.testing.Recorder] keeps every message of a
  receiver while time passes; [`settle`][frequenz.dispatch.testing.settle] lets
  ready tasks run without letting time pass.
* **pytest fixtures**, opt-in: `pytest -p frequenz.dispatch.testing` (or
  `addopts = "-p frequenz.dispatch.testing"`, or `pytest_plugins =
  ["frequenz.dispatch.testing"]` in a root `conftest.py`) gives `dispatch_clock`,
  `dispatch_start`, `dispatch_microgrid_id`, `fake_dispatch_client`,
  `fake_dispatcher`, `local_dispatch_service` and `local_dispatcher`, and runs
  the tests using fake time on the fake loop (needs pytest-asyncio >= 1.4).

Example: A daily dispatch, for a year, in milliseconds
    ```python
    import asyncio
    from datetime import datetime, timedelta, timezone

    from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
    from frequenz.dispatch import testing

    DAILY = RecurrenceRule(frequency=Frequency.DAILY, interval=1)

    START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)

    async def main() -> None:
        with testing.FakeClock(START) as clock:
            async with testing.fake_dispatcher(clock=clock) as (dispatcher, _):
                receiver = dispatcher.new_running_state_event_receiver("DAILY")
                async with testing.Recorder(receiver) as recorder:
                    await dispatcher.client.create(
                        microgrid_id=1,
                        type="DAILY",
                        start_time=START + timedelta(hours=1),
                        duration=timedelta(hours=2),
                        target=[1],
                        recurrence=DAILY,
                    )
                    await clock.advance(timedelta(days=365))
                starts = [d for d in recorder.messages if d.started]
                assert len(starts) == 365

    with asyncio.Runner(loop_factory=testing.EventLoop) as runner:
        runner.run(main())
    ```

Example: The same with the pytest plugin (`pytest -p frequenz.dispatch.testing`)
    ```python
    from datetime import timedelta

    from frequenz.dispatch import testing

    async def test_my_actor_starts(fake_dispatcher, dispatch_clock) -> None:
        dispatcher, client = fake_dispatcher
        receiver = dispatcher.new_running_state_event_receiver("MY_TYPE")
        await dispatcher.client.create(
            microgrid_id=1,
            type="MY_TYPE",
            start_time=dispatch_clock.now() + timedelta(minutes=5),
            duration=timedelta(minutes=10),
            target=[1],
        )
        started = await testing.next_event(receiver, within=timedelta(minutes=6))
        assert started.started
    ```
"""

from .._clock import Clock, wall_clock
from ._clock import EventLoop, FakeClock, is_fake_time
from ._harness import DispatcherHarness, fake_dispatcher, local_dispatcher
from ._receive import Recorder, next_event, no_event, settle

pytest_plugins = ["frequenz.dispatch.testing._pytest_plugin"]
"""Read by pytest only when this package is loaded as a plugin (`-p`)."""

__all__ = [
    "Clock",
    "DispatcherHarness",
    "EventLoop",
    "FakeClock",
    "Recorder",
    "fake_dispatcher",
    "is_fake_time",
    "local_dispatcher",
    "next_event",
    "no_event",
    "settle",
    "wall_clock",
]
