# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""What a held dispatch costs in memory, and that the compact layout keeps behaviour.

The byte budgets are measured with `tracemalloc` on CPython 3.11 (the figures
in the comments); they leave room for other versions' object sizes but fail if
a dispatch gets a dict of its own again, or the schedule a second object per
dispatch.
"""

from __future__ import annotations

import gc
import tracemalloc
from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule, Weekday
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatch
from frequenz.dispatch._schedule import Schedule
from frequenz.dispatch._wire import dispatch_from_protobuf

from .helpers import make_dispatch

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def _own_dict(obj: object) -> dict[str, object] | None:
    """Return the instance dict of `obj` if it has one, without creating one.

    Reading `obj.__dict__` would create it; the garbage collector's referents
    show either that dict or, in its absence, the attribute values themselves.
    """
    payload = getattr(obj, "payload", None)
    for referent in gc.get_referents(obj):
        if (
            isinstance(referent, dict)
            and referent is not payload
            and "start_time" in referent
        ):
            return referent
    return None


def _wire(
    dispatch_id: int,
    start: datetime,
    *,
    duration: timedelta | None = 10 * MINUTE,
    recurrence: RecurrenceRule | None = None,
    created: datetime | None = None,
) -> Dispatch:
    client = make_dispatch(
        dispatch_id,
        start_time=start,
        duration=duration,
        recurrence=recurrence,
        payload={"power": 10} if dispatch_id % 2 else {},
        create_time=created or T0 - timedelta(days=1, seconds=dispatch_id),
        update_time=created or T0 - timedelta(days=1, seconds=dispatch_id),
    )
    return dispatch_from_protobuf(client.to_protobuf())


HOURLY = RecurrenceRule(frequency=Frequency.HOURLY, interval=1)
ON_WEEKDAYS = RecurrenceRule(
    frequency=Frequency.MINUTELY,
    interval=15,
    byhours=[3, 9, 15],
    byweekdays=[Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY],
)


def _mix(count: int) -> list[Dispatch]:
    """One-shot running, one-shot future and recurring dispatches, all distinct."""
    dispatches = []
    for i in range(1, count + 1):
        offset = timedelta(seconds=i)
        if i % 3 == 0:
            dispatches.append(_wire(i, T0 + timedelta(hours=1) + offset))
        elif i % 3 == 1:
            dispatches.append(
                _wire(i, T0 - MINUTE - offset, duration=timedelta(days=2))
            )
        else:
            rule = HOURLY if i % 2 else ON_WEEKDAYS
            dispatches.append(
                _wire(i, T0 - timedelta(days=30) + offset, recurrence=rule)
            )
    return dispatches


def test_a_decoded_dispatch_holds_its_fields_without_a_dict() -> None:
    for dispatch in _mix(30):
        dispatch.validate()
        dispatch.window_at(T0)
        dispatch.next_change_after(T0)
        dispatch.closed_windows(T0 - MINUTE, T0)
        dispatch.closed_runs_between(T0 - timedelta(days=1), T0, T0)
        assert dispatch.next_run_after(T0) is not None or dispatch.duration
        copies = [dispatch.with_running_state(None), dispatch.as_deleted()]
        assert copies == [dispatch, dispatch.as_deleted()]
        assert _own_dict(dispatch) is None
        assert [_own_dict(copy) for copy in copies] == [None, None]


def test_a_dispatch_built_from_a_client_dispatch_holds_no_dict_either() -> None:
    dispatch = Dispatch(make_dispatch(1, start_time=T0))
    assert dispatch.started_at(T0 + MINUTE)
    assert _own_dict(dispatch) is None
    # Reading `__dict__` still works (and creates the dict): nothing is hidden.
    assert vars(dispatch)["start_time"] == T0
    assert _own_dict(dispatch) is not None


def test_the_compact_copies_keep_every_field_and_the_equality() -> None:
    dispatch = _wire(7, T0 - MINUTE, recurrence=HOURLY)
    client_fields = {
        name: getattr(dispatch, name) for name in vars(make_dispatch(1, start_time=T0))
    }
    for copy in (dispatch.with_running_state(None), dispatch.as_deleted()):
        assert {name: getattr(copy, name) for name in client_fields} == client_fields
        assert repr(copy).startswith("Dispatch(id=DispatchId(7), type='TEST'")
    assert dispatch.as_deleted() != dispatch
    assert dispatch.as_deleted().deleted and not dispatch.deleted
    assert dispatch.with_running_state(None) == dispatch
    assert repr(dispatch.with_running_state(None)) == repr(dispatch)


def test_a_one_shot_dispatch_starting_in_another_zone_runs_at_the_same_instant() -> (
    None
):
    zone = timezone(timedelta(hours=2))
    start = (T0 + timedelta(hours=1)).astimezone(zone)
    dispatch = Dispatch(make_dispatch(1, start_time=start))
    dispatch.validate()
    assert dispatch.next_run_after(T0) == start
    assert dispatch.next_run_after(T0).utcoffset() == timedelta(0)  # type: ignore[union-attr]
    window = dispatch.window_at(start + MINUTE)
    assert window is not None and window.start == start
    assert dispatch.window_at(start - MINUTE) is None


def test_equal_instants_and_durations_decode_to_one_object() -> None:
    created = T0 - timedelta(days=3)
    first = _wire(1, T0, created=created)
    second = _wire(2, T0, created=created)
    assert first.start_time is second.start_time
    assert first.duration is second.duration
    assert first.create_time is second.create_time is second.update_time
    assert _wire(3, T0 + MINUTE).start_time == T0 + MINUTE


def _held_bytes_per_dispatch(count: int) -> float:
    # What stays allocated once the schedule holds `count` decoded dispatches,
    # decoding included: the dispatches, their ids and values, the schedule's
    # entries and heap.
    gc.collect()
    tracemalloc.start()
    try:
        schedule = Schedule(lambda _: None)
        for dispatch in _mix(count):
            schedule.upsert(dispatch, T0, authoritative=True)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(schedule) == count
    return held / count


def test_a_held_dispatch_costs_under_a_kilobyte() -> None:
    # CPython 3.11: ~880 B per dispatch here, ids, start and create times all
    # distinct (before the compact layout: ~1,280 B, of which the dispatch's own
    # dict was 520 B).
    assert _held_bytes_per_dispatch(3000) < 1000


def test_held_dispatches_are_scheduled_without_a_dict() -> None:
    events: list[Dispatch] = []
    schedule = Schedule(events.append)
    dispatches = _mix(12)
    for dispatch in dispatches:
        schedule.upsert(dispatch, T0, authoritative=True)
    for minutes in range(0, 180, 7):
        schedule.advance(T0 + minutes * MINUTE)
    schedule.remove(DispatchId(1))
    assert events and all(_own_dict(event) is None for event in events)
    for dispatch in dispatches[1:]:
        held = schedule.get(dispatch.id)
        assert held is dispatch and _own_dict(held) is None


def test_a_reused_id_at_the_same_instant_runs_once() -> None:
    # The removed version's heap item stays behind (lazy deletion) with the
    # same instant and id as the new version's: only the new one is live.
    events: list[tuple[int, bool]] = []
    schedule = Schedule(
        lambda message: events.append((int(message.id), message.started))
    )
    start = T0 + 5 * MINUTE
    old, new = T0 - timedelta(days=1), T0
    schedule.upsert(Dispatch(make_dispatch(1, start_time=start, create_time=old)), T0)
    schedule.remove(DispatchId(1))
    schedule.upsert(Dispatch(make_dispatch(1, start_time=start, create_time=new)), T0)
    schedule.advance(start)
    schedule.advance(start + 10 * MINUTE)
    assert events == [(1, True), (1, False)]
    assert schedule.next_due() is None


def test_many_reschedules_leave_only_the_latest_instants_live() -> None:
    # Enough replaced heap items to trigger rebuilds of the heap.
    events: list[tuple[int, datetime]] = []
    schedule = Schedule(
        lambda message: events.append((int(message.id), message.start_time))
    )
    versions: dict[int, ClientDispatch] = {}
    for round_ in range(30):
        for dispatch_id in range(1, 101):
            start = T0 + timedelta(minutes=10 + (dispatch_id + round_) % 50)
            versions[dispatch_id] = make_dispatch(
                dispatch_id, start_time=start, update_time=T0 + round_ * MINUTE
            )
            schedule.upsert(Dispatch(versions[dispatch_id]), T0)
    for minute in range(0, 80):
        schedule.advance(T0 + minute * MINUTE)
    starts = [(i, start) for i, start in events if start == versions[i].start_time]
    assert len(events) == 200  # a start and a stop each, of the latest version only
    assert sorted(set(starts)) == sorted((i, v.start_time) for i, v in versions.items())
    assert schedule.next_due() is None
