# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Property: whatever valid dispatch the service accepts, its client reads back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import (
    EndCriteria,
    Frequency,
    RecurrenceRule,
    Weekday,
)
from frequenz.client.dispatch.types import TargetIds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frequenz.dispatch.local_service._validation import (
    MAX_TARGET_SIZE,
    MAX_TYPE_LENGTH,
)

from .threaded import service_in_thread

EXAMPLES = 150
"""Dispatches created and read back per run."""

KEY = "round-trip-key-0123456789"
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
"""JSON values, nested at most four levels below the payload itself."""


@st.composite
def dispatches(draw: st.DrawFn, now: datetime) -> dict[str, Any]:
    """Arguments of `client.create()` for a random valid dispatch after `now`."""
    start = draw(
        st.one_of(
            st.datetimes(
                min_value=(now + timedelta(hours=1)).replace(tzinfo=None),
                max_value=MAX_TIME.replace(tzinfo=None),
                timezones=st.just(timezone.utc),
            ).map(lambda t: t.replace(microsecond=0)),
            st.just(MAX_TIME),
        )
    )
    room = int((MAX_TIME - start).total_seconds())
    duration = draw(
        st.none()
        | st.integers(0, min(room, 2**32 - 1)).map(lambda s: timedelta(seconds=s))
    )
    recurrence = None
    if draw(st.booleans()):
        end = draw(
            st.none()
            | st.integers(1, 4096).map(lambda c: EndCriteria(count=c))
            | st.just(EndCriteria(until=MAX_TIME))
        )
        recurrence = RecurrenceRule(
            frequency=draw(st.sampled_from([f for f in Frequency if f.value])),
            interval=draw(st.integers(1, 10_000)),
            end_criteria=end,
            byminutes=draw(st.lists(st.integers(0, 59), max_size=3)),
            byhours=draw(st.lists(st.integers(0, 23), max_size=3)),
            byweekdays=draw(
                st.lists(st.sampled_from([d for d in Weekday if d.value]), max_size=3)
            ),
            bymonths=draw(st.lists(st.integers(1, 12), max_size=3)),
        )
    return {
        "type": draw(st.text(min_size=1, max_size=MAX_TYPE_LENGTH).filter(str.strip)),
        "start_time": start,
        "duration": duration,
        "target": TargetIds(
            *draw(st.lists(st.integers(1, 2**63), min_size=1, max_size=50))
        ),
        "active": draw(st.booleans()),
        "dry_run": draw(st.booleans()),
        "payload": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
        "recurrence": recurrence,
    }


def test_every_created_dispatch_reads_back() -> None:
    assert MAX_TARGET_SIZE > 50
    with service_in_thread(key=KEY) as service, asyncio.Runner() as runner:

        async def connect() -> DispatchApiClient:
            return DispatchApiClient(
                server_url=service.url,
                auth_key=KEY,
                call_timeout=timedelta(seconds=30),
            )

        client = runner.run(connect())
        microgrid = MicrogridId(1)
        created_ids: list[int] = []

        async def round_trip(arguments: dict[str, Any]) -> None:
            created = await client.create(microgrid_id=microgrid, **arguments)
            created_ids.append(int(created.id))
            assert created.type == arguments["type"]
            assert created.start_time == arguments["start_time"]
            got = await client.get(microgrid_id=microgrid, dispatch_id=created.id)
            assert got == created
            listed = [d async for page in client.list(microgrid) for d in page]
            assert sorted(int(d.id) for d in listed) == sorted(created_ids)
            assert created in listed

        # Fixed for the whole run: Hypothesis replays examples.
        now = datetime.now(timezone.utc).replace(microsecond=0)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(arguments=dispatches(now))
        def check(arguments: dict[str, Any]) -> None:
            runner.run(round_trip(arguments))

        try:
            check()
        finally:
            runner.run(client.disconnect())
    assert len(created_ids) >= EXAMPLES
