# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Lifecycle receivers hold at most what a consumer needs, per dispatch."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.test.client import FakeClient

from frequenz.dispatch import Created, Deleted, Dispatch, Updated
from frequenz.dispatch._bg_service import DispatchScheduler

from .conftest import START
from .helpers import MICROGRID, make_dispatch

UPDATES = 100_000
DISPATCHES = 100


def _d(dispatch_id: int) -> Any:
    return make_dispatch(dispatch_id, start_time=START + timedelta(days=1))


def _scheduler() -> DispatchScheduler:
    return DispatchScheduler(MICROGRID, client=FakeClient())


def test_pending_lifecycle_events_stay_bounded_by_dispatches() -> None:
    """100,000 updates of 100 dispatches, unread: at most 100 pending, latest kept."""
    scheduler = _scheduler()
    receiver = scheduler.new_lifecycle_events_receiver("TEST")
    bases = [_d(i + 1) for i in range(DISPATCHES)]
    for base in bases:
        scheduler.apply(Event.CREATED, Dispatch(base))
    for n in range(UPDATES):
        base = bases[n % DISPATCHES]
        version = replace(
            base,
            payload={"n": n},
            update_time=base.update_time + timedelta(seconds=n + 1),
        )
        scheduler.apply(Event.UPDATED, Dispatch(version))
        assert receiver.pending <= DISPATCHES  # type: ignore[attr-defined]
    events = [receiver.consume() for _ in range(receiver.pending)]  # type: ignore[attr-defined]
    assert all(isinstance(e, Created) for e in events)
    latest = {int(e.dispatch.id): e.dispatch.payload["n"] for e in events}
    assert latest == {i + 1: UPDATES - DISPATCHES + i for i in range(DISPATCHES)}


def test_coalescing_rules() -> None:
    """Created+Deleted vanish, Updated+Deleted is Deleted, Deleted+reused id both."""
    scheduler = _scheduler()
    receiver = scheduler.new_lifecycle_events_receiver("TEST")
    first = _d(1)
    scheduler.apply(Event.CREATED, Dispatch(first))
    scheduler.apply(Event.DELETED, Dispatch(first))
    assert receiver.pending == 0  # type: ignore[attr-defined]

    second = _d(2)
    scheduler.apply(Event.CREATED, Dispatch(second))
    assert isinstance(receiver.consume(), Created)
    later = replace(
        second, payload={"x": 1}, update_time=second.update_time + timedelta(1)
    )
    scheduler.apply(Event.UPDATED, Dispatch(later))
    scheduler.apply(Event.DELETED, Dispatch(later))
    events = [receiver.consume() for _ in range(receiver.pending)]  # type: ignore[attr-defined]
    assert [type(e) for e in events] == [Deleted]

    third = _d(3)
    scheduler.apply(Event.CREATED, Dispatch(third))
    assert isinstance(receiver.consume(), Created)
    scheduler.apply(Event.DELETED, Dispatch(third))
    reused = replace(
        third,
        create_time=third.create_time + timedelta(days=1),
        update_time=third.create_time + timedelta(days=1),
    )
    scheduler.apply(Event.CREATED, Dispatch(reused))
    updated = replace(
        reused, payload={"y": 2}, update_time=reused.update_time + timedelta(1)
    )
    scheduler.apply(Event.UPDATED, Dispatch(updated))
    events = [receiver.consume() for _ in range(receiver.pending)]  # type: ignore[attr-defined]
    assert [type(e) for e in events] == [Deleted, Created]
    assert events[1].dispatch.payload == {"y": 2}
    assert not isinstance(events[1], Updated)
