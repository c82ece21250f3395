# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Dispatches for the cache tests, built the way the service sends them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from frequenz.client.common.microgrid.components import ComponentCategory
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetCategories, TargetIds

from frequenz.dispatch import Dispatch
from frequenz.dispatch._wire import dispatch_from_protobuf

BASE = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def wire_dispatch(dispatch_id: int, **fields: Any) -> Dispatch:
    """A dispatch as it arrives from the wire (so it round-trips exactly)."""
    values: dict[str, Any] = {
        "id": DispatchId(dispatch_id),
        "type": "CACHE",
        "start_time": BASE + timedelta(hours=1),
        "duration": timedelta(minutes=10),
        "target": TargetIds(1, 2),
        "active": True,
        "dry_run": False,
        "payload": {},
        "recurrence": RecurrenceRule(),
        "create_time": BASE - timedelta(days=1),
        "update_time": BASE - timedelta(hours=1),
        "end_time": None,
    }
    values.update(fields)
    return dispatch_from_protobuf(ClientDispatch(**values).to_protobuf())


def varied_dispatches() -> list[Dispatch]:
    """Dispatches covering every field's shapes."""
    return [
        wire_dispatch(1),
        wire_dispatch(2, duration=None, payload={"a": 1, "nested": {"b": [1, "x"]}}),
        wire_dispatch(3, duration=timedelta(0), dry_run=True, active=False),
        wire_dispatch(
            4,
            target=TargetCategories(ComponentCategory.BATTERY),
            recurrence=RecurrenceRule(
                frequency=Frequency.DAILY,
                interval=2,
                end_criteria=EndCriteria(count=10),
                byhours=[1, 5],
                byminutes=[0, 30],
                byweekdays=[Weekday.MONDAY, Weekday.FRIDAY],
                bymonthdays=[1, 15],
                bymonths=[1, 6],
            ),
        ),
        wire_dispatch(
            5,
            target=TargetIds(),
            type="Ünïcode type",
            recurrence=RecurrenceRule(
                frequency=Frequency.MINUTELY,
                end_criteria=EndCriteria(until=BASE + timedelta(days=3)),
            ),
            end_time=BASE + timedelta(days=3),
            start_time=BASE + timedelta(microseconds=123456),
        ),
        wire_dispatch(2**40, payload={"float": 0.1, "neg": -3, "none": None}),
    ]


def generation(count: int, gen: int, first_id: int = 1) -> list[Dispatch]:
    """`count` dispatches whose payload and update time carry `gen`."""
    return [
        wire_dispatch(
            first_id + index,
            payload={"gen": gen},
            update_time=BASE + timedelta(seconds=gen),
        )
        for index in range(count)
    ]


def count_commits(statements: list[str]) -> int:
    """Return how many of `statements` are a COMMIT."""
    return sum(1 for s in statements if s.strip().upper() == "COMMIT")
