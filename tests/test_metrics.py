# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz.dispatch.metrics` through the public API, on the fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from frequenz.dispatch import Dispatcher, metrics
from frequenz.dispatch import _dispatcher as dispatcher_module
from frequenz.dispatch.testing import FakeClock, settle

from .fake_service import ControllableClient
from .helpers import create

URL = "grpc://dispatch.example.com:50051"
MINUTE = timedelta(minutes=1)
MG = {"microgrid_id": "1"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> ControllableClient:
    """Make `Dispatcher` use a controllable fake service."""
    client = ControllableClient()
    monkeypatch.setattr(dispatcher_module, "DispatchApiClient", lambda **_: client)
    return client


@pytest.fixture
async def dispatcher(
    clock: FakeClock, fake: ControllableClient
) -> AsyncIterator[Dispatcher]:
    """A dispatcher on microgrid 1, after its first sync."""
    async with Dispatcher(
        microgrid_id=1, server_url=URL, key="secret", clock=clock.now
    ) as running:
        await settle()
        yield running


async def elapse(clock: FakeClock, delta: timedelta) -> None:
    await clock.advance(delta)
    await settle()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**MG, **labels})


async def test_status_fields_as_gauges_and_counters(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    registry = CollectorRegistry()
    metrics.register(dispatcher, registry)
    await create(fake, type="A", start_time="NOW")
    await create(fake, type="B", start_time=clock.now() + MINUTE)
    await settle()

    assert value(registry, "frequenz_dispatch_connected") == 1.0
    assert value(registry, "frequenz_dispatch_ready") == 1.0
    assert value(registry, "frequenz_dispatch_state_source", source="service") == 1
    assert value(registry, "frequenz_dispatch_state_source", source="cache") == 0
    assert value(registry, "frequenz_dispatch_dispatches") == 2.0
    assert value(registry, "frequenz_dispatch_running_dispatches", type="A") == 1.0
    assert value(registry, "frequenz_dispatch_running_dispatches", type="B") is None
    status = dispatcher.status
    assert status.last_full_sync is not None and status.next_change is not None
    assert value(
        registry, "frequenz_dispatch_last_full_sync_timestamp_seconds"
    ) == pytest.approx(status.last_full_sync.timestamp())
    assert value(
        registry, "frequenz_dispatch_next_change_timestamp_seconds"
    ) == pytest.approx((clock.now() + MINUTE).timestamp())
    # Nothing went wrong yet: no timestamp rather than a fake 0.
    assert value(registry, "frequenz_dispatch_last_error_timestamp_seconds") is None
    assert value(registry, "frequenz_dispatch_cache_synced_timestamp_seconds") is None
    assert value(registry, "frequenz_dispatch_resyncs_total") == 0.0
    assert value(registry, "frequenz_dispatch_sync_duration_seconds_count") == 0.0

    fake.service.break_streams()
    await settle()
    assert value(registry, "frequenz_dispatch_connected") == 0.0
    assert value(registry, "frequenz_dispatch_failed_attempts_total") == 1.0
    assert value(registry, "frequenz_dispatch_last_error_timestamp_seconds") == (
        pytest.approx(clock.now().timestamp())
    )
    fake.service.reconnect()
    await elapse(clock, timedelta(seconds=31))
    assert value(registry, "frequenz_dispatch_connected") == 1.0
    assert value(registry, "frequenz_dispatch_resyncs_total") == 1.0
    assert value(registry, "frequenz_dispatch_reconnects_total") == 1.0
    assert value(registry, "frequenz_dispatch_sync_duration_seconds_count") == 1.0

    text = generate_latest(registry).decode()
    assert "# TYPE frequenz_dispatch_resyncs_total counter" in text
    assert "# TYPE frequenz_dispatch_event_lateness_seconds histogram" in text
    assert 'frequenz_dispatch_dispatches{microgrid_id="1"} 2.0' in text


async def test_the_cache_started_from_is_exported(
    clock: FakeClock, fake: ControllableClient, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    await create(fake, type="A", start_time=clock.now() + MINUTE)
    options: dict[str, Any] = {"server_url": URL, "key": "k", "clock": clock.now}
    async with Dispatcher(microgrid_id=1, cache_file=path, **options) as online:
        synced_at = online.status.last_full_sync
    assert synced_at is not None
    await elapse(clock, 10 * MINUTE)
    fake.service.break_streams()
    registry = CollectorRegistry()
    offline = Dispatcher(microgrid_id=1, cache_file=path, **options)
    metrics.register(offline, registry)
    async with offline:
        await settle()
        assert value(registry, "frequenz_dispatch_state_source", source="cache") == 1
        assert value(
            registry, "frequenz_dispatch_cache_synced_timestamp_seconds"
        ) == pytest.approx(synced_at.timestamp())


async def test_event_lateness_histogram(
    clock: FakeClock, fake: ControllableClient, dispatcher: Dispatcher
) -> None:
    registry = CollectorRegistry()
    metrics.register(dispatcher, registry)
    start = clock.now() + MINUTE
    await create(fake, type="A", start_time=start, duration=10 * MINUTE)
    await settle()
    # The wall clock jumps 30 s ahead while the timer sleeps: the start is
    # delivered 30 s after its scheduled instant.
    clock.jump(timedelta(seconds=30))
    await elapse(clock, MINUTE)
    name = "frequenz_dispatch_event_lateness_seconds"
    assert value(registry, f"{name}_count", type="A") == 1.0
    assert value(registry, f"{name}_sum", type="A") == pytest.approx(30.0, abs=0.01)
    assert value(registry, f"{name}_bucket", type="A", le="5.0") == 0.0
    assert value(registry, f"{name}_bucket", type="A", le="30.0") == 1.0

    # The stop comes on time.
    await elapse(clock, 10 * MINUTE)
    assert value(registry, f"{name}_count", type="A") == 2.0
    assert value(registry, f"{name}_bucket", type="A", le="0.001") == 1.0

    # A dispatch created while running is not "late": it was never scheduled
    # to be delivered earlier.
    await create(fake, type="A", start_time="NOW")
    await settle()
    assert value(registry, f"{name}_count", type="A") == 2.0


async def test_several_microgrids_and_unregister(
    clock: FakeClock, fake: ControllableClient
) -> None:
    registry = CollectorRegistry()
    one = Dispatcher(microgrid_id=1, server_url=URL, key="k", clock=clock.now)
    two = Dispatcher(microgrid_id=2, server_url=URL, key="k", clock=clock.now)
    first = metrics.register(one, registry)
    metrics.register(two, registry)
    with pytest.raises(ValueError, match="microgrid 1"):
        metrics.register(one, registry)
    await settle()
    for mid in ("1", "2"):
        assert registry.get_sample_value(
            "frequenz_dispatch_connected", {"microgrid_id": mid}
        ) == (0.0)
    first.unregister()
    first.unregister()
    assert (
        registry.get_sample_value("frequenz_dispatch_connected", {"microgrid_id": "1"})
        is None
    )
    assert (
        registry.get_sample_value("frequenz_dispatch_connected", {"microgrid_id": "2"})
        == 0.0
    )
    # Registering again after unregistering works.
    metrics.register(one, registry)


def test_register_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="Dispatcher or DispatchScheduler"):
        metrics.register(object(), CollectorRegistry())  # type: ignore[arg-type]
