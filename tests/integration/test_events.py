# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Changes made through the API reach a `Dispatcher` as the right events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from frequenz.client.dispatch import DispatchApiClient

from frequenz.dispatch import Created, Deleted, Dispatcher, Updated

from .conftest import MICROGRID, TIMEOUT, create, in_seconds, receive

SECOND = timedelta(seconds=1)


def _seconds_until(when: datetime) -> float:
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


async def test_create_update_delete_events(
    dispatcher: Dispatcher, client: DispatchApiClient
) -> None:
    lifecycle = dispatcher.new_lifecycle_events_receiver("EVENTS")
    running = dispatcher.new_running_state_event_receiver("EVENTS")
    other_lifecycle = dispatcher.new_lifecycle_events_receiver("OTHER")
    other_running = dispatcher.new_running_state_event_receiver("OTHER")

    start = in_seconds(2)
    created = await create(
        client, type="EVENTS", start_time=start, duration=30 * SECOND, payload={"v": 1}
    )
    event = await receive(lifecycle)
    assert isinstance(event, Created)
    assert event.dispatch.id == created.id
    assert event.dispatch.payload == {"v": 1}
    assert not event.dispatch.started

    # Changed before it starts: a lifecycle event, but no running-state event
    # (the first running-state event below is the start, with the new payload).
    updated = await client.update(
        microgrid_id=MICROGRID, dispatch_id=created.id, new_fields={"payload": {"v": 2}}
    )
    event = await receive(lifecycle)
    assert isinstance(event, Updated)
    assert event.dispatch.payload == {"v": 2}
    assert event.dispatch.update_time == updated.update_time

    # The start time is reached.
    started = await receive(running, timeout=_seconds_until(start) + TIMEOUT)
    assert datetime.now(timezone.utc) >= start
    assert (started.id, started.started, started.payload) == (
        created.id,
        True,
        {"v": 2},
    )
    assert started.until == start + 30 * SECOND

    # Changed while running: reconfigure (a start event with the new version).
    await client.update(
        microgrid_id=MICROGRID, dispatch_id=created.id, new_fields={"payload": {"v": 3}}
    )
    assert isinstance(await receive(lifecycle), Updated)
    reconfigured = await receive(running)
    assert (reconfigured.started, reconfigured.payload) == (True, {"v": 3})

    await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=created.id,
        new_fields={"duration": 20 * SECOND},
    )
    assert isinstance(await receive(lifecycle), Updated)
    shortened = await receive(running)
    assert shortened.started
    assert shortened.until == start + 20 * SECOND

    # Deleted while running: a lifecycle event and a stop.
    await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)
    event = await receive(lifecycle)
    assert isinstance(event, Deleted)
    assert event.dispatch.id == created.id
    assert event.dispatch.deleted
    stopped = await receive(running)
    assert (stopped.id, stopped.started, stopped.deleted) == (created.id, False, True)

    # Nothing else was sent: once a later change has arrived, nothing is pending.
    sentinel = await create(client, type="EVENTS")
    event = await receive(lifecycle)
    assert isinstance(event, Created)
    assert event.dispatch.id == sentinel.id
    assert lifecycle.pending == 0  # type: ignore[attr-defined]
    assert running.pending == 0
    assert other_lifecycle.pending == 0  # type: ignore[attr-defined]
    assert other_running.pending == 0


async def test_window_start_and_end(
    dispatcher: Dispatcher, client: DispatchApiClient
) -> None:
    running = dispatcher.new_running_state_event_receiver("WINDOW")
    start = in_seconds(1)
    created = await create(client, type="WINDOW", start_time=start, duration=2 * SECOND)

    started = await receive(running, timeout=_seconds_until(start) + TIMEOUT)
    assert datetime.now(timezone.utc) >= start
    assert (started.id, started.started, started.until) == (
        created.id,
        True,
        start + 2 * SECOND,
    )

    stopped = await receive(running, timeout=_seconds_until(start) + 2 + TIMEOUT)
    assert datetime.now(timezone.utc) >= start + 2 * SECOND
    assert (stopped.id, stopped.started, stopped.until) == (created.id, False, None)
    assert not stopped.deleted


async def test_new_receiver_gets_what_runs_now(
    dispatcher: Dispatcher, client: DispatchApiClient
) -> None:
    lifecycle = dispatcher.new_lifecycle_events_receiver("NOW")
    created = await create(client, type="NOW", start_time="NOW", duration=None)
    await create(client, type="NOW")  # not running
    assert isinstance(await receive(lifecycle), Created)
    assert isinstance(await receive(lifecycle), Created)

    running = dispatcher.new_running_state_event_receiver("NOW")
    first = await receive(running)
    assert (first.id, first.started, first.until) == (created.id, True, None)
    assert running.pending == 0
