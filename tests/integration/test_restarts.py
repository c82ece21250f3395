# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Fault injection: the service restarts while a `Dispatcher` runs.

While the original service is down, dispatches are created, changed and deleted
through a second service on the same database file (another port). After each
reconnect the `Dispatcher` must hold exactly the service's state and must have
sent exactly the events an uninterrupted run would have sent.

Every dispatch here runs from its creation and never ends (`start_time="NOW"`,
`duration=None`), so running-state events come only from the changes made.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Created, Deleted, Dispatch, DispatchEvent, Updated
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import (
    KEY,
    MICROGRID,
    create,
    held_state,
    make_client,
    make_dispatcher,
    receive,
    receive_n,
    service_state,
)

TYPE = "RESTARTS"
CYCLES = 40
"""Stop/change/restart cycles in one test (at least 20 are required)."""

TIME_LIMIT = 60.0
"""The whole restart test must take less than this many seconds."""


@dataclass
class Model:
    """What the service holds, as far as events are concerned."""

    payload: dict[str, Any]
    active: bool


def _lifecycle_key(event: DispatchEvent) -> tuple[str, int, Any]:
    # Deleted carries the last version the Dispatcher held, so no update time.
    time_ = None if isinstance(event, Deleted) else event.dispatch.update_time
    return (type(event).__name__, int(event.dispatch.id), time_)


def _running_key(dispatch: Dispatch) -> tuple[int, bool, Any]:
    return (int(dispatch.id), dispatch.started, dispatch.payload)


class Expectation:
    """The events an uninterrupted run would send for a set of changes."""

    def __init__(self) -> None:
        self.lifecycle: list[tuple[str, int, Any]] = []
        self.running: list[tuple[int, bool, Any]] = []
        self.touched: set[int] = set()
        """Dispatches changed meanwhile: a re-sync sees only their last version."""

    def created(self, model: dict[int, Model], dispatch: ClientDispatch) -> None:
        model[int(dispatch.id)] = Model(dispatch.payload, dispatch.active)
        self.touched.add(int(dispatch.id))
        self.lifecycle.append(("Created", int(dispatch.id), dispatch.update_time))
        if dispatch.active:
            self.running.append((int(dispatch.id), True, dispatch.payload))

    def updated(self, model: dict[int, Model], dispatch: ClientDispatch) -> None:
        before = model[int(dispatch.id)]
        model[int(dispatch.id)] = Model(dispatch.payload, dispatch.active)
        self.touched.add(int(dispatch.id))
        self.lifecycle.append(("Updated", int(dispatch.id), dispatch.update_time))
        if before.active or dispatch.active:
            # A start (or reconfiguration) when active now, a stop when not.
            self.running.append((int(dispatch.id), dispatch.active, dispatch.payload))

    def deleted(self, model: dict[int, Model], dispatch_id: int) -> None:
        before = model.pop(dispatch_id)
        self.lifecycle.append(("Deleted", dispatch_id, None))
        if before.active:
            self.running.append((dispatch_id, False, before.payload))


async def _change_while_down(
    api: DispatchApiClient,
    model: dict[int, Model],
    cycle: int,
    rng: random.Random,
) -> Expectation:
    """Create one dispatch, change one and delete one (every 5th cycle: nothing)."""
    expect = Expectation()
    if cycle % 5 == 4:
        return expect  # a bare reconnect: only the live change below is sent
    existing = sorted(model)
    to_change, to_delete = rng.sample(existing, 2)
    new = await create(
        api, type=TYPE, start_time="NOW", duration=None, payload={"born": cycle}
    )
    expect.created(model, new)
    if cycle % 3 == 0:
        fields: dict[str, Any] = {"active": not model[to_change].active}
    else:
        fields = {"payload": {"changed": cycle}}
    changed = await api.update(
        microgrid_id=MICROGRID, dispatch_id=DispatchId(to_change), new_fields=fields
    )
    expect.updated(model, changed)
    await api.delete(microgrid_id=MICROGRID, dispatch_id=DispatchId(to_delete))
    expect.deleted(model, to_delete)
    return expect


async def test_state_and_events_survive_restarts(
    database: Path,
) -> None:
    began = time.monotonic()
    rng = random.Random(20260105)
    primary = LocalDispatchService(database=database, key=KEY)
    # Same file, another port: the "meanwhile" side of each outage.
    backup = LocalDispatchService(database=database, key=KEY)
    # One service per file at a time: the backup binds its port first.
    await backup.start()
    await backup.stop()
    await primary.start()
    api = make_client(primary)
    backup_api = make_client(backup)
    dispatcher = make_dispatcher(primary)
    model: dict[int, Model] = {}
    cycles = 0
    try:
        async with dispatcher:
            lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
            running = dispatcher.new_running_state_event_receiver(TYPE)

            seed = Expectation()
            for index in range(4):
                seed.created(
                    model,
                    await create(
                        api,
                        type=TYPE,
                        start_time="NOW",
                        duration=None,
                        payload={"seed": index},
                    ),
                )
            got = await receive_n(lifecycle, len(seed.lifecycle))
            assert [_lifecycle_key(e) for e in got] == seed.lifecycle
            assert [
                _running_key(d) for d in await receive_n(running, 4)
            ] == seed.running

            for cycle in range(CYCLES):
                resyncs = dispatcher._bg_service.resyncs

                await primary.stop()
                await backup.start()
                expect = await _change_while_down(backup_api, model, cycle, rng)
                await backup.stop()
                await primary.start()

                # A live change after the restart, to a dispatch not changed
                # meanwhile: whether it arrives through the re-sync's full list or
                # through the new stream, it is one event.
                live_id = min(set(model) - expect.touched)
                live = await api.update(
                    microgrid_id=MICROGRID,
                    dispatch_id=DispatchId(live_id),
                    new_fields={"payload": {"live": cycle}},
                )
                expect.updated(model, live)

                got_lifecycle = await receive_n(lifecycle, len(expect.lifecycle))
                got_running = await receive_n(running, len(expect.running))
                assert sorted(map(_lifecycle_key, got_lifecycle), key=repr) == sorted(
                    expect.lifecycle, key=repr
                ), f"cycle {cycle}"
                assert sorted(map(_running_key, got_running), key=repr) == sorted(
                    expect.running, key=repr
                ), f"cycle {cycle}"
                # Nothing lost, nothing duplicated, exactly one full re-sync.
                assert lifecycle.pending == 0  # type: ignore[attr-defined]
                assert running.pending == 0
                assert dispatcher._bg_service.resyncs == resyncs + 1
                # The Dispatcher holds exactly what the service has.
                assert held_state(dispatcher) == await service_state(api)
                assert set(held_state(dispatcher)) == set(model)
                cycles += 1

            # After all that, the stream still delivers changes as they happen.
            last = await create(api, type=TYPE, start_time="NOW", duration=None)
            event = await receive(lifecycle)
            assert isinstance(event, Created)
            assert event.dispatch.id == last.id
            started = await receive(running)
            assert (started.id, started.started) == (last.id, True)
            assert held_state(dispatcher) == await service_state(api)
    finally:
        await api.disconnect()
        await backup_api.disconnect()
        await backup.stop()
        await primary.stop()

    elapsed = time.monotonic() - began
    print(f"restart cycles: {cycles} in {elapsed:.1f} s")
    assert cycles == CYCLES >= 20
    assert elapsed < TIME_LIMIT


async def test_resync_delay_starts_over_after_a_successful_sync(
    service: LocalDispatchService, client: DispatchApiClient
) -> None:
    dispatcher = make_dispatcher(service)
    async with dispatcher:
        lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
        for outage in range(4):
            await service.stop()
            await service.start()
            # Created while the Dispatcher waits to reconnect: it arrives with the
            # re-sync, 0.5 s (the back-off's first step) after the stream broke.
            created = await create(client, type=TYPE, payload={"outage": outage})
            event = await receive(lifecycle, timeout=1.5)
            assert isinstance(event, Created)
            assert event.dispatch.id == created.id


async def test_updated_event_of_a_change_while_down_is_not_repeated(
    service: LocalDispatchService, client: DispatchApiClient
) -> None:
    """A change found by one re-sync is not reported again by the next one."""
    dispatcher = make_dispatcher(service)
    async with dispatcher:
        lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
        created = await create(client, type=TYPE)
        assert isinstance(await receive(lifecycle), Created)

        await service.stop()
        await service.start()
        updated = await client.update(
            microgrid_id=MICROGRID,
            dispatch_id=created.id,
            new_fields={"payload": {"x": 1}},
        )
        event = await receive(lifecycle)
        assert isinstance(event, Updated)
        assert event.dispatch.update_time == updated.update_time

        # Another outage without changes: the next event is the sentinel's.
        await service.stop()
        await service.start()
        sentinel = await create(client, type=TYPE)
        event = await receive(lifecycle)
        assert isinstance(event, Created)
        assert event.dispatch.id == sentinel.id
