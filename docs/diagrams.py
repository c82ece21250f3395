# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The scenarios the documentation draws, and what the library does with them.

`docs/hooks.py` turns each scenario into a picture (with the project's own
`frequenz.dispatch.timeline.save_timeline_image`) and, for scenarios with a
merge strategy, into a table of what each actor got: the scenario's dispatches
are handed to a real `Dispatcher` on the test kit's fake clock, with
`start_managing`, and every actor creation, reconfiguration and stop is written
down. Nothing in a diagram or table is typed by hand, so they cannot go stale.

A page shows scenario `NAME` with the marker `<!-- scenario: NAME -->`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds
from frequenz.sdk.actor import Actor

from frequenz.dispatch import (
    DispatchInfo,
    MergeByType,
    MergeByTypeTarget,
    MergeStrategy,
)
from frequenz.dispatch.testing import EventLoop, FakeClock, fake_dispatcher, settle
from frequenz.dispatch.timeline import Merge

NOW = datetime(2026, 5, 4, 0, 0, tzinfo=timezone.utc)
"""Where every scenario starts (a Monday, midnight UTC)."""

_MICROGRID = MicrogridId(1)


@dataclass(frozen=True)
class Run:
    """One dispatch of a scenario, in hours from `NOW`."""

    type: str
    start: float
    duration: float | None
    target: tuple[int, ...] = (1,)
    dry_run: bool = False
    daily: bool = False
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """Dispatches drawn over a horizon, optionally managed with a merge strategy."""

    caption: str
    runs: tuple[Run, ...]
    hours: float = 12
    lanes: Merge = "none"
    strategy: MergeStrategy | None = None
    managed: bool = False

    def dispatches(self) -> list[ClientDispatch]:
        """Return the scenario's dispatches, with ids 1, 2, ... in order."""
        return [_client_dispatch(index + 1, run) for index, run in enumerate(self.runs)]


def _client_dispatch(dispatch_id: int, run: Run) -> ClientDispatch:
    return ClientDispatch(
        id=DispatchId(dispatch_id),
        type=run.type,
        start_time=NOW + timedelta(hours=run.start),
        duration=None if run.duration is None else timedelta(hours=run.duration),
        target=TargetIds(*run.target),
        active=True,
        dry_run=run.dry_run,
        payload=dict(run.payload),
        recurrence=(
            RecurrenceRule(frequency=Frequency.DAILY, interval=1)
            if run.daily
            else RecurrenceRule()
        ),
        create_time=NOW - timedelta(days=1),
        update_time=NOW - timedelta(days=1),
    )


class ByZone(MergeByType):
    """The custom strategy of the merge-strategies page: one actor per zone."""

    def identity(self, dispatch: Any) -> int:
        """Return one identity per type and the payload's `zone`.

        Args:
            dispatch: The dispatch.

        Returns:
            The identity.
        """
        return hash((dispatch.type, dispatch.dry_run, dispatch.payload.get("zone")))


_OVERLAP = (
    Run("BATTERY_CHARGE", start=1, duration=4, target=(7,)),
    Run("BATTERY_CHARGE", start=3, duration=4, target=(8,)),
    Run("BATTERY_CHARGE", start=5.5, duration=2, target=(7,)),
)

SCENARIOS: dict[str, Scenario] = {
    "window": Scenario(
        caption="A daily dispatch from 02:00 for 3 h: one window per occurrence.",
        runs=(Run("BATTERY_CHARGE", start=2, duration=3, daily=True),),
        hours=48,
    ),
    "kinds": Scenario(
        caption=(
            "A one-off window, a window without end (duration None), a dry run "
            "and a zero-duration switch (the black tick)."
        ),
        runs=(
            Run("PEAK_SHAVING", start=1, duration=3),
            Run("FCR", start=2, duration=None),
            Run("PEAK_SHAVING", start=6, duration=2, dry_run=True),
            Run("SWITCH_ON", start=9, duration=0),
        ),
    ),
    "merge-none": Scenario(
        caption="Three overlapping dispatches without a merge strategy.",
        runs=_OVERLAP,
        managed=True,
    ),
    "merge-by-type": Scenario(
        caption="The same three dispatches under MergeByType: one lane, one actor.",
        runs=_OVERLAP,
        lanes="type",
        strategy=MergeByType(),
        managed=True,
    ),
    "merge-by-type-target": Scenario(
        caption=(
            "The same three dispatches under MergeByTypeTarget: one actor per target."
        ),
        runs=_OVERLAP,
        lanes="type-target",
        strategy=MergeByTypeTarget(),
        managed=True,
    ),
    "merge-by-zone": Scenario(
        caption=(
            "Dispatches for two zones (payload zone) and their targets; the custom "
            "ByZone strategy gives one actor per zone."
        ),
        runs=(
            Run("HEATING", start=1, duration=4, target=(1,), payload={"zone": "north"}),
            Run("HEATING", start=2, duration=4, target=(2,), payload={"zone": "north"}),
            Run("HEATING", start=3, duration=3, target=(3,), payload={"zone": "south"}),
        ),
        strategy=ByZone(),
        managed=True,
    ),
}
"""Every scenario a page shows, by name."""


@dataclass(frozen=True)
class Step:
    """What one actor got, at which time."""

    at: datetime
    actor: str
    what: str


class _RecordingActor(Actor):
    """An actor that writes down its start, its updates and its stop."""

    def __init__(
        self,
        name: str,
        updates: Receiver[DispatchInfo],
        clock: FakeClock,
        steps: list[Step],
    ) -> None:
        super().__init__(name=name)
        self._updates = updates
        self._clock = clock
        self._steps = steps

    async def _run(self) -> None:
        try:
            async for info in self._updates:
                self._steps.append(
                    Step(self._clock.now(), self.name, f"updated: {_describe(info)}")
                )
        except asyncio.CancelledError:
            self._steps.append(Step(self._clock.now(), self.name, "stopped"))
            raise


def _describe(info: DispatchInfo) -> str:
    source = info._src  # which dispatch is what the table shows
    dispatch_id = "?" if source is None else int(source.id)
    return f"dispatch {dispatch_id}, target {sorted(info.target)}"  # type: ignore[type-var]


async def _managed_steps(scenario: Scenario, clock: FakeClock) -> list[Step]:
    steps: list[Step] = []
    actors = 0
    client = FakeClient()
    client.set_dispatches(_MICROGRID, scenario.dispatches())

    async def make_actor(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
        nonlocal actors
        actors += 1
        name = f"actor {actors}"
        steps.append(Step(clock.now(), name, f"created: {_describe(info)}"))
        return _RecordingActor(name, updates, clock, steps)

    async with fake_dispatcher(clock=clock, client=client) as (dispatcher, _):
        await dispatcher.start_managing(
            scenario.runs[0].type,
            actor_factory=make_actor,
            merge_strategy=scenario.strategy,
        )
        await clock.advance(timedelta(hours=scenario.hours))
        await settle()
        # Taken before leaving: the stops of shutting down are not the scenario's.
        return list(steps)


def managed_steps(scenario: Scenario) -> list[Step]:
    """Run the scenario's dispatches through `start_managing`, on fake time.

    Args:
        scenario: The scenario (its first run's type is the one managed).

    Returns:
        Every actor creation, update and stop, in order.
    """

    async def main() -> list[Step]:
        with FakeClock(NOW) as clock:
            return await _managed_steps(scenario, clock)

    with asyncio.Runner(loop_factory=EventLoop) as runner:
        return runner.run(main())


def steps_table(steps: list[Step]) -> str:
    """Return the steps as a markdown table.

    Args:
        steps: The steps.

    Returns:
        The table.
    """
    lines = ["| time (UTC) | actor | what it got |", "| --- | --- | --- |"]
    lines += [f"| {s.at:%H:%M} | {s.actor} | {s.what} |" for s in steps]
    return "\n".join(lines)
