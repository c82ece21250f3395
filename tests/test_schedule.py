# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Direct tests of `Schedule`, the pure core: explicit instants, no event loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatch
from frequenz.dispatch._schedule import Change, Schedule

from .helpers import make_dispatch

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def dispatch(dispatch_id: int, start: datetime, **kwargs: object) -> Dispatch:
    """A 10-minute dispatch (unless `duration` says otherwise)."""
    return Dispatch(make_dispatch(dispatch_id, start_time=start, **kwargs))  # type: ignore[arg-type]


class Recorder:
    """Collects what the schedule emits, as (id, started, until)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, bool, datetime | None]] = []
        self.schedule = Schedule(self._emit)

    def _emit(self, message: Dispatch) -> None:
        self.events.append((int(message.id), message.started, message.until))

    def take(self) -> list[tuple[int, bool, datetime | None]]:
        taken, self.events = self.events, []
        return taken


def test_upsert_of_a_running_dispatch_starts_it() -> None:
    rec = Recorder()
    assert rec.schedule.upsert(dispatch(1, T0), T0 + MINUTE) is Change.CREATED
    assert rec.take() == [(1, True, T0 + 10 * MINUTE)]
    assert len(rec.schedule) == 1
    assert rec.schedule.ids() == [DispatchId(1)]
    assert [int(d.id) for d in rec.schedule.running("TEST")] == [1]
    assert list(rec.schedule.running("OTHER")) == []
    assert rec.schedule.next_due() == T0 + 10 * MINUTE


def test_upsert_of_a_future_dispatch_only_schedules_it() -> None:
    rec = Recorder()
    assert rec.schedule.upsert(dispatch(1, T0 + 5 * MINUTE), T0) is Change.CREATED
    assert rec.take() == []
    assert rec.schedule.next_due() == T0 + 5 * MINUTE


def test_advance_sends_start_then_stop_at_their_instants() -> None:
    rec = Recorder()
    rec.schedule.upsert(dispatch(1, T0 + 5 * MINUTE), T0)
    rec.schedule.advance(T0 + 5 * MINUTE - timedelta(microseconds=1))
    assert rec.take() == []
    rec.schedule.advance(T0 + 5 * MINUTE)
    assert rec.take() == [(1, True, T0 + 15 * MINUTE)]
    assert rec.schedule.next_due() == T0 + 15 * MINUTE
    rec.schedule.advance(T0 + 15 * MINUTE)
    assert rec.take() == [(1, False, None)]
    assert rec.schedule.next_due() is None
    assert list(rec.schedule.running(None)) == []


def test_a_late_advance_misses_closed_windows_and_starts_open_ones_late() -> None:
    rec = Recorder()
    rec.schedule.upsert(dispatch(2, T0 + 30 * MINUTE), T0)
    rec.schedule.upsert(dispatch(1, T0 + 5 * MINUTE), T0)
    rec.schedule.upsert(dispatch(3, T0 + 115 * MINUTE), T0)
    rec.schedule.advance(T0 + 2 * 60 * MINUTE)
    # 1 and 2 closed before the schedule got to them; 3 is still open.
    assert rec.take() == [(3, True, T0 + 125 * MINUTE)]
    assert rec.schedule.missed_runs_by_type() == {"TEST": 2}
    assert rec.schedule.next_due() == T0 + 125 * MINUTE


def test_at_one_instant_starts_come_before_stops() -> None:
    rec = Recorder()
    rec.schedule.upsert(dispatch(1, T0), T0)  # runs until T0 + 10 min
    rec.schedule.upsert(dispatch(2, T0 + 10 * MINUTE), T0)  # starts then
    rec.take()
    rec.schedule.advance(T0 + 10 * MINUTE)
    assert rec.take() == [(2, True, T0 + 20 * MINUTE), (1, False, None)]


def test_identical_and_older_versions_change_nothing() -> None:
    rec = Recorder()
    current = dispatch(1, T0, update_time=T0)
    rec.schedule.upsert(current, T0)
    rec.take()
    assert rec.schedule.upsert(current, T0 + MINUTE) is Change.UNCHANGED
    older = dispatch(1, T0, update_time=T0 - MINUTE, payload={"v": 0})
    assert rec.schedule.upsert(older, T0 + MINUTE) is Change.STALE
    assert rec.take() == []
    assert rec.schedule.get(DispatchId(1)) == current


def test_an_update_that_reconfigures_a_running_dispatch_restarts_it() -> None:
    rec = Recorder()
    rec.schedule.upsert(dispatch(1, T0, update_time=T0), T0)
    rec.take()
    newer = dispatch(1, T0, update_time=T0 + MINUTE, payload={"power": 5})
    assert rec.schedule.upsert(newer, T0 + MINUTE) is Change.UPDATED
    assert rec.take() == [(1, True, T0 + 10 * MINUTE)]
    # Deactivating stops it, and nothing is scheduled any more.
    inactive = dispatch(1, T0, update_time=T0 + 2 * MINUTE, active=False)
    assert rec.schedule.upsert(inactive, T0 + 2 * MINUTE) is Change.UPDATED
    assert rec.take() == [(1, False, None)]
    assert rec.schedule.next_due() is None


def test_remove_stops_a_running_dispatch_and_rejects_later_versions() -> None:
    rec = Recorder()
    # One dispatch (one create_time): a later version after its deletion is late.
    rec.schedule.upsert(dispatch(1, T0, update_time=T0, create_time=T0), T0)
    rec.take()
    deleted = rec.schedule.remove(DispatchId(1))
    assert deleted is not None and deleted.deleted
    assert rec.take() == [(1, False, None)]
    assert rec.schedule.remove(DispatchId(1)) is None
    late = dispatch(1, T0, update_time=T0 + MINUTE, create_time=T0)
    assert rec.schedule.upsert(late, T0 + MINUTE) is Change.STALE
    assert rec.schedule.next_due() is None
    # A full list is authoritative: after forgetting deletions it is accepted.
    rec.schedule.forget_deletions()
    assert rec.schedule.upsert(late, T0 + MINUTE) is Change.CREATED


def test_remove_of_a_future_dispatch_unschedules_it() -> None:
    rec = Recorder()
    rec.schedule.upsert(dispatch(1, T0 + 5 * MINUTE), T0)
    rec.schedule.remove(DispatchId(1))
    assert rec.schedule.next_due() is None
    rec.schedule.advance(T0 + 60 * MINUTE)
    assert rec.take() == []


def test_an_invalid_dispatch_is_refused_without_affecting_others() -> None:
    rec = Recorder()
    naive = dispatch(1, T0.replace(tzinfo=None))
    assert rec.schedule.upsert(naive, T0) is Change.INVALID
    assert rec.schedule.upsert(dispatch(2, T0), T0) is Change.CREATED
    assert rec.take() == [(2, True, T0 + 10 * MINUTE)]


def test_running_counts_follow_starts_stops_and_type_changes() -> None:
    rec = Recorder()

    def counts() -> dict[str, int]:
        counted = rec.schedule.running_counts()
        # The same as counting the start events `running` rebuilds.
        from_events: dict[str, int] = {}
        for message in rec.schedule.running(None):
            from_events[message.type] = from_events.get(message.type, 0) + 1
        assert counted == from_events
        return counted

    created = T0 - MINUTE
    rec.schedule.upsert(dispatch(1, T0, update_time=T0, create_time=created), T0)
    rec.schedule.upsert(dispatch(2, T0, type="OTHER", create_time=created), T0)
    rec.schedule.upsert(dispatch(3, T0 + 5 * MINUTE, create_time=created), T0)
    assert counts() == {"TEST": 1, "OTHER": 1}
    rec.schedule.advance(T0 + 5 * MINUTE)
    assert counts() == {"TEST": 2, "OTHER": 1}
    # A running dispatch that changes type is counted under its new type only.
    retyped = dispatch(
        1, T0, type="OTHER", update_time=T0 + 6 * MINUTE, create_time=created
    )
    rec.schedule.upsert(retyped, T0 + 6 * MINUTE)
    assert counts() == {"TEST": 1, "OTHER": 2}
    rec.schedule.advance(T0 + 10 * MINUTE)  # 1 and 2 end
    assert counts() == {"TEST": 1}
    rec.schedule.advance(T0 + 15 * MINUTE)  # 3 ends
    assert counts() == {}
