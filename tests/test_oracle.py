# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The running-state events checked against a brute-force oracle.

Hypothesis generates sets of dispatches (one-shot and recurring, finite, zero and
infinite durations, active or not, of a few types) and sequences of steps: create,
update, delete, letting time pass, and jumps of the wall clock alone, forward
(a suspend, NTP) and backward. The scheduler runs on a fresh fake event loop per
example, its receivers are drained by consumer tasks that note when each message
arrived, and the oracle, which knows nothing but the dispatches' versions and
plain dateutil, predicts every message: per dispatch, at which instant it comes,
whether it is a start or a stop, its `until`, its payload and whether it reports
a deletion, and how many runs were missed per type.

The oracle is told what the library was told: the instants it looked at the
clock (its timer's wake-ups and the stream's events) and the versions it got. It
then evaluates every dispatch by brute force (all occurrences from dateutil) at
each such instant, following the contract:

* a dispatch runs at `t` iff it is active, not deleted, and `t` lies in
  `[o, o + duration)` for the latest occurrence `o <= t` of its rule (without a
  recurrence, `o` is `start_time`; with `duration` None it runs from
  `start_time` on and the recurrence is ignored);
* events describe the present: at each instant the library looks, the window
  open then is sent if it is not the one last sent (a late start has its true
  `until`); a window that closed since the last look is missed (counted, not
  sent) unless it started at most the on-time tolerance ago, in which case its
  start and stop are both sent (a zero duration is such a switch when on time);
* a wall clock set back by more than the tolerance re-evaluates at the new time;
  by less, it is treated as standing still;
* an update sends a message when the running window changed, or when it runs
  before and after and a field a consumer acts on changed (start time, duration,
  active, payload); nothing otherwise;
* a delete of a running dispatch sends a stop marked deleted.

Every message the schedule sends is checked, and so is what the consumers read:
a receiver merges pending messages of one dispatch with the same running state
into the newest (documented in the user guide), which happens when the schedule
sends two before the consumer runs, as a stream event's catch-up and its upsert
do. The oracle is told how much each consumer had read at every call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from frequenz.dispatch import Dispatch
from frequenz.dispatch._bg_service import DispatchScheduler
from frequenz.dispatch._schedule import ON_TIME_TOLERANCE
from frequenz.dispatch.testing import EventLoop, FakeClock

from .helpers import MICROGRID

T = TypeVar("T")

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
TYPES = ("CHARGE", "DISCHARGE")
SECOND = timedelta(seconds=1)

# Hypothesis needs a fresh fake loop per example, so the coupling of loop and wall
# clock that the `clock` fixture gives other tests is applied here by hand.


def run_on_fake_loop(
    main: Callable[[FakeClock], Coroutine[Any, Any, T]], start: datetime = START
) -> T:
    """Run a coroutine on a fresh async-solipsism loop with coupled clocks."""

    async def on_clock() -> T:
        with FakeClock(start) as clock:
            return await main(clock)

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


@dataclasses.dataclass(frozen=True)
class Jump:
    """Move the wall clock alone (the event loop's time does not move)."""

    seconds: float


Step = Create | Update | Delete | Advance | Jump

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
jumps = st.builds(
    Jump,
    seconds=st.one_of(
        # Around the tolerance, a suspend of a minute to a day, NTP steps back.
        st.sampled_from([-0.5, 0.5, -1.5, 1.5, 61, 3600, 86400, -600, -3600]),
        st.integers(min_value=-3 * 3600, max_value=24 * 3600),
    ),
)
steps = st.builds(
    lambda initial, rest: [*initial, *rest],
    st.lists(creates, min_size=1, max_size=6),
    st.lists(
        st.one_of(
            creates, advances, advances, advances, updates, updates, deletes, jumps
        ),
        min_size=2,
        max_size=20,
    ),
)


# The oracle


Window = tuple[datetime, datetime | None]
Message = tuple[datetime, bool, datetime | None, float | None, bool]
"""When, started, until, payload["v"], deleted."""

TICK = timedelta(microseconds=1)


class Occurrences:
    """Every occurrence of each dispatch version, from plain dateutil."""

    def __init__(self, horizon: datetime) -> None:
        self._horizon = horizon
        self._cache: dict[tuple[datetime, str], list[datetime]] = {}

    def starts(self, dispatch: ClientDispatch) -> list[datetime]:
        """Return the run starts of `dispatch`, up to the end of the example."""
        rule = dispatch.recurrence
        if dispatch.duration is None or rule.frequency == Frequency.UNSPECIFIED:
            return [dispatch.start_time]
        key = (dispatch.start_time, repr(rule))
        cached = self._cache.get(key)
        if cached is None:
            cached = []
            for occurrence in rule._as_rrule(dispatch.start_time):
                if occurrence > self._horizon:
                    break
                cached.append(occurrence)
            self._cache[key] = cached
        return cached

    def window_at(self, dispatch: ClientDispatch, t: datetime) -> Window | None:
        """Return the window `dispatch` runs in at `t`, None if it does not run."""
        if not dispatch.active:
            return None
        if dispatch.duration is None:
            return (dispatch.start_time, None) if dispatch.start_time <= t else None
        starts = self.starts(dispatch)
        index = bisect_right(starts, t) - 1
        if index < 0:
            return None
        end = starts[index] + dispatch.duration
        return (starts[index], end) if t < end else None

    def closed(
        self, dispatch: ClientDispatch, after: datetime, before: datetime, t: datetime
    ) -> list[datetime]:
        """Return the starts in `[after, before)` of windows closed by `t`."""
        duration = dispatch.duration
        if not dispatch.active or duration is None:
            return []
        return [
            s
            for s in self.starts(dispatch)
            if after <= s < before and s + duration <= t
        ]


@dataclasses.dataclass
class _State:
    version: ClientDispatch
    sent: Window | None = None
    seen: datetime | None = None
    fired: datetime | None = None
    read_when_sent: int | None = None
    """How many messages of it the consumer had read when the last one was sent."""


class Oracle:
    """Predicts the messages from what the library was told, by brute force."""

    def __init__(self, horizon: datetime) -> None:
        self._runs = Occurrences(horizon)
        self._states: dict[int, _State] = {}
        self._last: datetime | None = None
        self._raw = START
        self._reads: dict[int, int] = {}
        self.sent: dict[int, list[Message]] = defaultdict(list)
        """Every message the schedule sends."""
        self.expected: dict[int, list[Message]] = defaultdict(list)
        """What a consumer reads: `sent`, with the receiver's coalescing applied."""
        self.missed: dict[str, int] = defaultdict(int)

    def _emit(self, key: int, window: Window | None, *, deleted: bool = False) -> None:
        state = self._states[key]
        state.sent = window
        message = (
            self._raw,
            window is not None,
            None if window is None else window[1],
            state.version.payload.get("v"),
            deleted,
        )
        self.sent[key].append(message)
        expected = self.expected[key]
        read = self._reads.get(key, 0)
        if state.read_when_sent == read and expected[-1][1] == message[1]:
            # The last one is still pending (the consumer did not run since, e.g.
            # a stream event's catch-up and its upsert): the receiver merges
            # pending messages of one dispatch with the same running state into
            # the newest.
            expected[-1] = message
        else:
            expected.append(message)
        state.read_when_sent = read

    def reads(self, reads: dict[int, int]) -> None:
        """Note how many messages of each dispatch the consumers had read."""
        self._reads = reads

    def _observe(self, raw: datetime) -> datetime:
        self._raw = raw
        last = self._last
        if last is not None and raw < last:
            if last - raw <= ON_TIME_TOLERANCE:
                return last  # a hair back: the clock stands still
            self._last = raw
            for key, state in self._states.items():
                window = self._runs.window_at(state.version, raw)
                if window != state.sent:
                    self._emit(key, window)
                state.seen = raw
            return raw
        self._last = raw
        return raw

    def _evaluate(
        self, key: int, t: datetime, *, reconfigure: bool, catching_up: bool
    ) -> None:
        state = self._states[key]
        dispatch = state.version
        after = t - ON_TIME_TOLERANCE
        if catching_up and state.seen is not None:
            missed = self._runs.closed(dispatch, state.seen + TICK, after, t)
            self.missed[dispatch.type] += len(missed)
            after = max(after, state.seen + TICK)
        if state.fired is not None:
            after = max(after, state.fired + TICK)
        assert dispatch.duration is not None or not self._runs.closed(
            dispatch, after, t + TICK, t
        )
        for start in self._runs.closed(dispatch, after, t + TICK, t):
            assert dispatch.duration is not None
            self._emit(key, (start, start + dispatch.duration))
            self._emit(key, None)
            state.fired = start
        window = self._runs.window_at(dispatch, t)
        if window is not None:
            if window != state.sent or reconfigure:
                self._emit(key, window)
        elif state.sent is not None:
            self._emit(key, None)
        state.seen = t

    def advance(self, raw: datetime) -> None:
        """The library looked at the clock (its timer, or before an event)."""
        t = self._observe(raw)
        for key in self._states:
            self._evaluate(key, t, reconfigure=False, catching_up=True)

    def upsert(self, dispatch: ClientDispatch, raw: datetime) -> None:
        """The library got a new version."""
        t = self._observe(raw)
        key = int(dispatch.id)
        state = self._states.get(key)
        if state is None:
            self._states[key] = _State(dispatch)
            self._evaluate(key, t, reconfigure=False, catching_up=False)
            return
        if dispatch.update_time < state.version.update_time:
            # Older than the version held (the fake service stamps versions with
            # the wall clock, which may have been set back): ignored.
            return
        if dispatch == state.version:
            return
        old, state.version = state.version, dispatch
        self._evaluate(
            key, t, reconfigure=_reconfigures(old, dispatch), catching_up=False
        )

    def remove(self, dispatch_id: int) -> None:
        """The library got a deletion."""
        state = self._states.pop(dispatch_id, None)
        if state is not None and state.sent is not None:
            self._states[dispatch_id] = state
            self._emit(dispatch_id, None, deleted=True)
            del self._states[dispatch_id]


def _reconfigures(old: ClientDispatch, new: ClientDispatch) -> bool:
    return any(
        getattr(old, name) != getattr(new, name)
        for name in ("start_time", "duration", "active", "payload", "target")
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


Call = tuple[str, Any, Any, dict[int, int]]
"""What the schedule was told, and how many messages of each dispatch had been read."""


def _record(
    scheduler: DispatchScheduler,
    calls: list[Call],
    received: dict[int, list[Message]],
    sent: dict[int, list[Message]],
) -> None:
    """Note every input the schedule gets (when it looked, which versions) and what
    it sends, before any receiver's coalescing."""
    schedule = scheduler._schedule
    advance, upsert, remove = schedule.advance, schedule.upsert, schedule.remove
    emit = schedule._emit

    def reads() -> dict[int, int]:
        # Consumers drain their receiver whenever they run, and never while the
        # schedule is called: what they had not read is still pending.
        return {key: len(messages) for key, messages in received.items()}

    def advancing(now: datetime) -> None:
        calls.append(("advance", now, None, reads()))
        advance(now)

    def upserting(dispatch: Dispatch, now: datetime, **options: Any) -> Any:
        calls.append(("upsert", dispatch, now, reads()))
        return upsert(dispatch, now, **options)

    def removing(dispatch_id: DispatchId, version: Dispatch | None = None) -> Any:
        calls.append(("remove", dispatch_id, None, reads()))
        return remove(dispatch_id, version)

    def emitting(message: Dispatch) -> None:
        sent[int(message.id)].append(_observed(now(), message))
        emit(message)

    setattr(schedule, "advance", advancing)  # noqa: B010
    setattr(schedule, "upsert", upserting)  # noqa: B010
    setattr(schedule, "remove", removing)  # noqa: B010
    setattr(schedule, "_emit", emitting)  # noqa: B010


async def _run(plan: list[Step], clock: FakeClock) -> None:
    forward = sum(
        step.seconds
        for step in plan
        if isinstance(step, Advance) or (isinstance(step, Jump) and step.seconds > 0)
    )
    horizon = START + timedelta(seconds=forward + 4 * 3600)
    runs = Occurrences(horizon)
    received: dict[int, list[Message]] = defaultdict(list)
    sent: dict[int, list[Message]] = defaultdict(list)
    live: dict[DispatchId, ClientDispatch] = {}
    calls: list[Call] = []

    client = FakeClient()
    scheduler = DispatchScheduler(MICROGRID, client, clock=clock.now)
    _record(scheduler, calls, received, sent)
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
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Jump):
            clock.jump(timedelta(seconds=step.seconds))
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
        elif live:
            ids = sorted(live)
            if step.running:
                ids = [i for i in ids if runs.window_at(live[i], at)] or ids
            dispatch_id = ids[step.which % len(ids)]
            if isinstance(step, Delete):
                await client.delete(microgrid_id=MICROGRID, dispatch_id=dispatch_id)
                del live[dispatch_id]
            else:
                live[dispatch_id] = await client.update(
                    microgrid_id=MICROGRID,
                    dispatch_id=dispatch_id,
                    new_fields=_fields(step.fields, at),
                )
        await settle()

    await scheduler.stop()
    await asyncio.gather(*consumers)

    oracle = Oracle(horizon)
    for kind, first, second, reads in calls:
        oracle.reads(reads)
        if kind == "advance":
            oracle.advance(first)
        elif kind == "upsert":
            oracle.upsert(first, second)
        else:
            oracle.remove(int(first))

    # What the schedule sends, message for message.
    for key in sorted(set(oracle.sent) | set(sent)):
        got, want = sent.get(key, []), oracle.sent.get(key, [])
        assert got == want, (key, got, want)
    # What the consumers read: the same, merged where the receiver coalesced.
    expected = oracle.expected
    for key in sorted(set(expected) | set(received)):
        want, got = expected.get(key, []), received.get(key, [])
        # The running-state transitions, then every message exactly.
        assert _collapse([m[1] for m in got]) == _collapse([m[1] for m in want]), (
            key,
            got,
            want,
        )
        assert got == want, (key, got, want)
    missed = {t: n for t, n in oracle.missed.items() if n}
    assert scheduler._schedule.missed_runs_by_type() == missed


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
# A late start after a jump and the update that reconfigures it, sent by one
# stream event before the consumer runs: the receiver keeps only the newest.
@example(
    plan=[
        Create("CHARGE", 0, None, True, 0, None),
        Create("CHARGE", 60, None, True, 0, None),
        Jump(61),
        Update(1, False, {"start_time": 0}),
    ]
)
def test_running_state_events_match_the_oracle(plan: list[Step]) -> None:
    run_on_fake_loop(lambda clock: _run(plan, clock))
