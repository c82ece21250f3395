# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Offline start from the cache, over real gRPC against the local service.

A `Dispatcher` syncs and writes its cache; the service is stopped; a new
`Dispatcher` starts from the cache alone and manages actors on time; the service
comes back with changes made meanwhile (through a second service on the same
database file) and the events are exactly what a live stream would have given.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from frequenz.channels import Receiver
from frequenz.client.dispatch.types import DispatchId
from frequenz.sdk.actor import Actor
from typing_extensions import override

from frequenz.dispatch import Created, Deleted, Dispatcher, DispatchInfo, Updated
from frequenz.dispatch._cache import DispatchCache
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import (
    KEY,
    MICROGRID,
    MICROGRID_ID,
    TIMEOUT,
    create,
    held_state,
    in_seconds,
    make_client,
    receive,
    receive_n,
    service_state,
)

TYPE = "OFFLINE"
RECONNECT_TIMEOUT = 40.0
"""The sync's back-off grows to 30 s while the service is down."""


class Recorder(Actor):
    """An actor that records when it was created, by its payload's name."""

    def __init__(self, info: DispatchInfo, log: list[tuple[str, datetime]]) -> None:
        super().__init__(name=f"recorder-{info.options['name']}")
        log.append((str(info.options["name"]), datetime.now(timezone.utc)))

    @override
    async def _run(self) -> None:
        await asyncio.Event().wait()


def offline_dispatcher(service: LocalDispatchService, cache: Path) -> Dispatcher:
    return Dispatcher(
        microgrid_id=MICROGRID_ID,
        server_url=service.url,
        key=service.key,
        call_timeout=timedelta(seconds=TIMEOUT),
        cache_file=cache,
    )


async def test_offline_start_from_cache_then_reconnect_without_duplicates(
    database: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "dispatch-cache.sqlite3"
    primary = LocalDispatchService(database=database, key=KEY)
    backup = LocalDispatchService(database=database, key=KEY)
    await primary.start()
    api = make_client(primary)
    backup_api = None
    try:
        running_now = await create(
            api, type=TYPE, start_time="NOW", duration=None, payload={"name": "A"}
        )
        soon_start = in_seconds(3)
        await create(
            api,
            type=TYPE,
            start_time=soon_start,
            duration=timedelta(minutes=5),
            payload={"name": "B"},
        )
        to_change = await create(api, type=TYPE, payload={"name": "C"})
        to_delete = await create(api, type=TYPE, payload={"name": "D"})

        # 1. Online: sync and cache.
        async with asyncio.timeout(TIMEOUT), offline_dispatcher(primary, cache):
            pass
        stored = DispatchCache.open(cache, MICROGRID)
        state = stored.load()
        stored.close()
        assert state is not None
        assert {int(d.id) for d in state.dispatches} == set(await service_state(api))

        # 2. Offline: the service is stopped; start from the cache.
        await primary.stop()
        actors: list[tuple[str, datetime]] = []

        async def factory(info: DispatchInfo, _: Receiver[DispatchInfo]) -> Actor:
            return Recorder(info, actors)

        dispatcher = offline_dispatcher(primary, cache)
        began = time.monotonic()
        async with asyncio.timeout(3 * TIMEOUT):
            async with asyncio.timeout(TIMEOUT):
                await dispatcher.__aenter__()
            try:
                entered = time.monotonic() - began
                lifecycle = dispatcher.new_lifecycle_events_receiver(TYPE)
                running = dispatcher.new_running_state_event_receiver(TYPE)
                await dispatcher.start_managing(TYPE, actor_factory=factory)
                first = await receive(running)
                assert (first.id, first.started) == (running_now.id, True)
                second = await receive(running, timeout=TIMEOUT)
                assert second.started and second.payload == {"name": "B"}
                await asyncio.sleep(0.1)  # let the actor dispatcher act on it
                assert [name for name, _ in actors] == ["A", "B"]
                late = actors[1][1] - soon_start
                assert timedelta(0) <= late < timedelta(seconds=1), late

                # 3. Changes while the Dispatcher cannot see the service.
                await backup.start()
                backup_api = make_client(backup)
                changed = await backup_api.update(
                    microgrid_id=MICROGRID,
                    dispatch_id=to_change.id,
                    new_fields={"payload": {"name": "C", "v": 2}},
                )
                await backup_api.delete(
                    microgrid_id=MICROGRID, dispatch_id=to_delete.id
                )
                new = await create(
                    backup_api,
                    type=TYPE,
                    start_time="NOW",
                    duration=None,
                    payload={"name": "E"},
                )
                await backup.stop()

                # 4. The service is back: reconcile.
                await primary.start()
                events = await receive_n(lifecycle, 3, timeout=RECONNECT_TIMEOUT)
                assert sorted(
                    (type(e).__name__, int(e.dispatch.id)) for e in events
                ) == sorted(
                    [
                        ("Updated", int(changed.id)),
                        ("Deleted", int(to_delete.id)),
                        ("Created", int(new.id)),
                    ]
                )
                updated = next(e for e in events if isinstance(e, Updated))
                assert updated.dispatch.update_time == changed.update_time
                assert not any(
                    isinstance(e, Created) and e.dispatch.id == running_now.id
                    for e in events
                )
                assert any(isinstance(e, Deleted) for e in events)
                started_new = await receive(running)
                assert (started_new.id, started_new.started) == (new.id, True)
                await asyncio.sleep(0.2)
                # Nothing else: no second start of A or B, no extra event.
                assert lifecycle.pending == 0  # type: ignore[attr-defined]
                assert running.pending == 0
                assert [name for name, _ in actors] == ["A", "B", "E"]
                assert held_state(dispatcher) == await service_state(api)
            finally:
                await dispatcher.__aexit__(None, None, None)
        print(f"offline start: async with returned after {entered * 1e3:.0f} ms")

        # The cache now holds the service's state.
        stored = DispatchCache.open(cache, MICROGRID)
        state = stored.load()
        stored.close()
        assert state is not None
        expected: dict[int, Any] = await service_state(api)
        assert {int(d.id) for d in state.dispatches} == set(expected)
        assert DispatchId(int(to_delete.id)) not in {d.id for d in state.dispatches}
    finally:
        await api.disconnect()
        if backup_api is not None:
            await backup_api.disconnect()
        await backup.stop()
        await primary.stop()
