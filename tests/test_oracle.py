# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The running-state events checked against a brute-force oracle.

Hypothesis generates sets of dispatches (one-shot and recurring, finite, zero and
infinite durations, active or not, of a few types) and sequences of steps: create,
update, delete, and letting time pass. The scheduler runs on a fresh fake event
loop per example, its receivers are drained by consumer tasks that note when each
message arrived, and the oracle, which knows nothing but the dispatches' current
versions and plain dateutil, predicts every message: per dispatch, at which instant
it comes, whether it is a start or a stop, its `until`, its payload and whether it
reports a deletion.

The oracle mirrors these semantics of the library:

* a dispatch runs at `t` iff it is active, not deleted, and `t` lies in
  `[o, o + duration)` for the latest occurrence `o <= t` of its rule (without a
  recurrence, `o` is `start_time`; with `duration` None it runs from
  `start_time` on and the recurrence is ignored; a zero duration never runs);
* every change is evaluated at the exact instant it is due;
* a window that ends exactly when the next starts gives one start message (with
  the new `until`), no stop in between;
* an update sends a message when the running window changed, or when it runs
  before and after and a field a consumer acts on changed (start time, duration,
  active, payload); nothing otherwise;
* a delete of a running dispatch sends a stop marked deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frequenz.dispatch import Dispatch
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch.testing import EventLoop, FakeClock

from .helpers import MICROGRID

T = TypeVar("T")

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
TYPES = ("CHARGE", "DISCHARGE")
SECOND = timedelta(seconds=1)

# Hypothesis needs a fresh fake loop per example, so the coupling of loop and wall
# clock that the `clock` fixture gives other tests is applied here by hand.


def run_on_fake_loop(main: Coroutine[Any, Any, T], start: datetime = START) -> T:
    """Run a coroutine on a fresh async-solipsism loop with coupled clocks."""

    async def on_clock() -> T:
        with FakeClock(start):
            return await main

    loop = EventLoop()
    try:
        result: T = loop.run_until_complete(on_clock())
        return result
    finally:
        loop.close()


def now() -> datetime:
    """Return the (fake) current time."""
    return datetime.now(tz=timezone.utc)


async def settle() -> None:
    """Let every ready task run, without letting fake time pass."""
    for _ in range(40):
        await asyncio.sleep(0)


# Steps


@dataclasses.dataclass(frozen=True)
class Create:
    """Create a dispatch `start` seconds from now (0: "NOW")."""

    type: str
    start: int
    duration: int | None
    active: bool
    payload: int
    recurrence: RecurrenceRule | None


@dataclasses.dataclass(frozen=True)
class Update:
    """Update the `which`-th live dispatch (modulo their number).

    With `running`, only dispatches running now are picked, if any.
    """

    which: int
    running: bool
    fields: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Delete:
    """Delete the `which`-th live dispatch (modulo their number).

    With `running`, only dispatches running now are picked, if any.
    """

    which: int
    running: bool


@dataclasses.dataclass(frozen=True)
class Advance:
    """Let time pass."""

    seconds: int


Step = Create | Update | Delete | Advance

durations = st.one_of(
    st.none(),
    st.sampled_from([0, 30, 60, 90, 120, 300, 600, 3600, 7200]),
    st.integers(min_value=0, max_value=4 * 3600),
)
end_criteria = st.one_of(
    st.none(),
    st.builds(EndCriteria, count=st.integers(min_value=1, max_value=5)),
    st.builds(
        EndCriteria,
        until=st.integers(min_value=0, max_value=8 * 3600).map(
            lambda seconds: START + seconds * SECOND
        ),
    ),
)
recurrences = st.one_of(
    st.none(),
    st.builds(
        RecurrenceRule,
        frequency=st.sampled_from(
            [Frequency.MINUTELY, Frequency.HOURLY, Frequency.DAILY]
        ),
        interval=st.integers(min_value=1, max_value=3),
        end_criteria=end_criteria,
    ),
)
offsets = st.one_of(
    st.sampled_from([60, 120, 600, 3600]),
    st.integers(min_value=1, max_value=3 * 3600),
)
creates = st.builds(
    Create,
    type=st.sampled_from(TYPES),
    start=st.one_of(st.just(0), st.just(0), offsets),
    duration=durations,
    active=st.sampled_from([True, True, True, False]),
    payload=st.integers(min_value=0, max_value=2),
    recurrence=recurrences,
)
updates = st.builds(
    Update,
    which=st.integers(min_value=0, max_value=50),
    running=st.booleans(),
    fields=st.fixed_dictionaries(
        {},
        optional={
            "start_time": st.integers(min_value=-3 * 3600, max_value=3 * 3600),
            "duration": durations,
            "active": st.booleans(),
            "payload": st.integers(min_value=0, max_value=2),
            "recurrence.interval": st.integers(min_value=1, max_value=3),
        },
    ),
)
deletes = st.builds(
    Delete, which=st.integers(min_value=0, max_value=50), running=st.booleans()
)
advances = st.builds(
    Advance,
    seconds=st.one_of(
        st.sampled_from([1, 30, 60, 600, 3600]),
        st.integers(min_value=1, max_value=3 * 3600),
    ),
)
steps = st.builds(
    lambda initial, rest: [*initial, *rest],
    st.lists(creates, min_size=1, max_size=6),
    st.lists(
        st.one_of(creates, advances, advances, advances, updates, updates, deletes),
        min_size=2,
        max_size=20,
    ),
)


# The oracle


Window = tuple[datetime, datetime | None]
Message = tuple[datetime, bool, datetime | None, float | None, bool]
"""When, started, until, payload["v"], deleted."""


class Oracle:
    """Decides from dispatch versions alone when each dispatch runs."""

    def __init__(self, horizon: datetime) -> None:
        self._horizon = horizon
        self._occurrences: dict[tuple[datetime, str], list[datetime]] = {}

    def _starts(self, dispatch: ClientDispatch) -> list[datetime]:
        rule = dispatch.recurrence
        if rule.frequency == Frequency.UNSPECIFIED:
            return [dispatch.start_time]
        key = (dispatch.start_time, repr(rule))
        cached = self._occurrences.get(key)
        if cached is None:
            # Plain dateutil, enumerated once up to the end of the example.
            cached = []
            for occurrence in rule._as_rrule(dispatch.start_time):
                if occurrence > self._horizon:
                    break
                cached.append(occurrence)
            self._occurrences[key] = cached
        return cached

    def window_at(self, dispatch: ClientDispatch | None, t: datetime) -> Window | None:
        """Return the window `dispatch` runs in at `t`, None if it does not run."""
        if dispatch is None or not dispatch.active:
            return None
        if dispatch.duration is None:
            return (dispatch.start_time, None) if dispatch.start_time <= t else None
        starts = self._starts(dispatch)
        index = bisect_right(starts, t) - 1
        if index < 0:
            return None
        start = starts[index]
        end = start + dispatch.duration
        return (start, end) if t < end else None

    def boundaries(
        self, dispatch: ClientDispatch, after: datetime, until: datetime
    ) -> list[datetime]:
        """Return every window start and end in `(after, until]`."""
        if not dispatch.active:
            return []
        if dispatch.duration is None:
            return [dispatch.start_time] if after < dispatch.start_time <= until else []
        found = set()
        for start in self._starts(dispatch):
            if start > until:
                break
            for instant in (start, start + dispatch.duration):
                if after < instant <= until:
                    found.add(instant)
        return sorted(found)


def _reconfigures(old: ClientDispatch, new: ClientDispatch) -> bool:
    return any(
        getattr(old, name) != getattr(new, name)
        for name in ("start_time", "duration", "active", "payload", "target")
    )


def _message(
    when: datetime,
    dispatch: ClientDispatch,
    window: Window | None,
    *,
    deleted: bool = False,
) -> Message:
    return (
        when,
        window is not None,
        None if window is None else window[1],
        dispatch.payload.get("v"),
        deleted,
    )


def _observed(when: datetime, message: Dispatch) -> Message:
    return (
        when,
        message.started,
        message.until,
        message.payload.get("v"),
        message.deleted,
    )


def _collapse(values: list[bool]) -> list[bool]:
    collapsed: list[bool] = []
    for value in values:
        if not collapsed or collapsed[-1] != value:
            collapsed.append(value)
    return collapsed


# The property


async def _run(plan: list[Step]) -> None:
    horizon = START + timedelta(
        seconds=sum(step.seconds for step in plan if isinstance(step, Advance)) + 1
    )
    oracle = Oracle(horizon)
    expected: dict[int, list[Message]] = defaultdict(list)
    received: dict[int, list[Message]] = defaultdict(list)
    live: dict[DispatchId, ClientDispatch] = {}

    client = FakeClient()
    scheduler = DispatchScheduler(MICROGRID, client)
    scheduler.start()
    await scheduler.wait_for_initialization()

    async def consume(dispatch_type: str) -> None:
        async for message in scheduler.new_running_state_event_receiver(dispatch_type):
            assert message.type == dispatch_type
            received[int(message.id)].append(_observed(now(), message))

    consumers = [asyncio.create_task(consume(t)) for t in TYPES]
    await settle()

    for step in plan:
        at = now()
        if isinstance(step, Advance):
            for dispatch in live.values():
                window = oracle.window_at(dispatch, at)
                end = at + timedelta(seconds=step.seconds)
                for instant in oracle.boundaries(dispatch, at, end):
                    new_window = oracle.window_at(dispatch, instant)
                    if new_window != window:
                        expected[int(dispatch.id)].append(
                            _message(instant, dispatch, new_window)
                        )
                        window = new_window
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Create):
            created = await client.create(
                microgrid_id=MICROGRID,
                type=step.type,
                start_time="NOW" if step.start == 0 else at + step.start * SECOND,
                duration=None if step.duration is None else step.duration * SECOND,
                target=TargetIds(1, 2),
                active=step.active,
                payload={"v": step.payload},
                recurrence=step.recurrence,
            )
            live[created.id] = created
            window = oracle.window_at(created, at)
            if window is not None:
                expected[int(created.id)].append(_message(at, created, window))
        elif live:
            ids = sorted(live)
            if step.running:
                ids = [i for i in ids if oracle.window_at(live[i], at)] or ids
            dispatch_id = ids[step.which % len(ids)]
            old = live[dispatch_id]
            before = oracle.window_at(old, at)
            if isinstance(step, Delete):
                await client.delete(microgrid_id=MICROGRID, dispatch_id=dispatch_id)
                del live[dispatch_id]
                if before is not None:
                    expected[int(dispatch_id)].append(
                        _message(at, old, None, deleted=True)
                    )
            else:
                new = await client.update(
                    microgrid_id=MICROGRID,
                    dispatch_id=dispatch_id,
                    new_fields=_fields(step.fields, at),
                )
                live[dispatch_id] = new
                after = oracle.window_at(new, at)
                if after != before or (after is not None and _reconfigures(old, new)):
                    expected[int(dispatch_id)].append(_message(at, new, after))
        await settle()

    await scheduler.stop()
    await asyncio.gather(*consumers)

    for key in sorted(set(expected) | set(received)):
        want, got = expected.get(key, []), received.get(key, [])
        # The running-state transitions, then every message exactly.
        assert _collapse([m[1] for m in got]) == _collapse([m[1] for m in want]), (
            key,
            got,
            want,
        )
        assert got == want, (key, got, want)


def _fields(fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "start_time":
            converted[name] = at + value * SECOND
        elif name == "duration":
            converted[name] = None if value is None else value * SECOND
        elif name == "payload":
            converted[name] = {"v": value}
        else:
            converted[name] = value
    return converted


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_running_state_events_match_the_oracle(plan: list[Step]) -> None:
    run_on_fake_loop(_run(plan))
