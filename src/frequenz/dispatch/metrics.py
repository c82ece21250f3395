# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Prometheus metrics of a dispatcher's status (the `metrics` extra).

`register(dispatcher)` exports, for the dispatcher's microgrid (label
`microgrid_id`), every field of its
[`DispatcherStatus`][frequenz.dispatch.DispatcherStatus] and two histograms:

| metric | kind | what |
| --- | --- | --- |
| `frequenz_dispatch_connected` | gauge | 1 while the update stream is up |
| `frequenz_dispatch_ready` | gauge | 1 once a state is held (service or cache) |
| `frequenz_dispatch_state_source{source}` | gauge | 1 for the current source (`service`, `cache`, `none`) |
| `frequenz_dispatch_last_full_sync_timestamp_seconds` | gauge | last full sync (Unix time) |
| `frequenz_dispatch_last_error_timestamp_seconds` | gauge | last error (Unix time) |
| `frequenz_dispatch_disconnected_since_timestamp_seconds` | gauge | start of the current outage |
| `frequenz_dispatch_next_change_timestamp_seconds` | gauge | next scheduled start or stop |
| `frequenz_dispatch_cache_synced_timestamp_seconds` | gauge | the sync the offline cache started from held (Unix time) |
| `frequenz_dispatch_dispatches` | gauge | dispatches held |
| `frequenz_dispatch_running_dispatches{type}` | gauge | dispatches running now |
| `frequenz_dispatch_resyncs_total` | counter | full lists after the first |
| `frequenz_dispatch_reconnects_total` | counter | connections re-established |
| `frequenz_dispatch_failed_attempts_total` | counter | failed attempts and broken streams |
| `frequenz_dispatch_missed_runs_total{type}` | counter | runs missed |
| `frequenz_dispatch_event_lateness_seconds{type}` | histogram | scheduled instant to delivery of each start/stop |
| `frequenz_dispatch_sync_duration_seconds` | histogram | each full list and its reconciliation |

Timestamps of things that did not happen (no error yet, no start from a cache)
are left out rather than exported as 0. The cache's age is `time() -
frequenz_dispatch_cache_synced_timestamp_seconds` in PromQL (a timestamp rather
than an age gauge: reading "now" at scrape time would read the dispatcher's
clock from the HTTP server's thread); it matters while `state_source{source=
"cache"}` is 1. The gauges and counters are read from the latest published
status at scrape time, so scraping from the HTTP server's thread never touches
the event loop's state.

Example: Serving the metrics on loopback
    ```python
    import prometheus_client

    from frequenz.dispatch import Dispatcher
    from frequenz.dispatch import metrics

    async def run(url: str, key: str) -> None:
        dispatcher = Dispatcher(microgrid_id=1, server_url=url, key=key)
        metrics.register(dispatcher)  # into prometheus_client.REGISTRY
        async with dispatcher:  # registered before: the first sync is measured
            server, _ = prometheus_client.start_http_server(0, addr="127.0.0.1")
            print(f"metrics at http://127.0.0.1:{server.server_port}/metrics")
            await dispatcher
    ```
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector
except ImportError as error:  # pragma: no cover  # depends on the installation
    raise ImportError(
        "frequenz.dispatch.metrics needs prometheus-client: "
        "pip install 'frequenz-dispatch[metrics]'"
    ) from error

from ._status import StateSource, StatusRecorder

if TYPE_CHECKING:
    from ._bg_service import DispatchScheduler
    from ._dispatcher import Dispatcher

__all__ = [
    "EVENT_LATENESS_BUCKETS",
    "SYNC_DURATION_BUCKETS",
    "MetricsRegistration",
    "register",
]

EVENT_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0)
"""Buckets of the event lateness histogram (s): a healthy loop stays in the first."""

SYNC_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Buckets of the sync duration histogram (s)."""


@dataclass(eq=False)
class MetricsRegistration:
    """A dispatcher's metrics in one registry; `unregister()` removes them."""

    microgrid_id: int
    """The `microgrid_id` label value."""

    registry: CollectorRegistry
    """Where the metrics are registered."""

    _recorder: StatusRecorder = field(repr=False)
    _metrics: _RegistryMetrics = field(repr=False)
    _observers: tuple[object, object] = field(repr=False)

    def unregister(self) -> None:
        """Stop exporting this dispatcher's metrics (idempotent)."""
        lateness, sync = self._observers
        _discard(self._recorder.lateness_observers, lateness)
        _discard(self._recorder.sync_observers, sync)
        self._metrics.remove(self)


def register(
    dispatcher: Dispatcher | DispatchScheduler,
    registry: CollectorRegistry | None = None,
) -> MetricsRegistration:
    """Export a dispatcher's status as Prometheus metrics.

    Several dispatchers (for several microgrids) can be registered in one
    registry: they share the metric names and differ by `microgrid_id`.

    Args:
        dispatcher: A `Dispatcher` or `DispatchScheduler`, started or not.
        registry: Where to register; prometheus_client's default `REGISTRY` if
            None.

    Returns:
        The registration, to `unregister()` it.

    Raises:
        TypeError: If `dispatcher` is neither a `Dispatcher` nor a
            `DispatchScheduler`.
        ValueError: If a dispatcher of the same microgrid is registered there
            already.
    """
    recorder = _recorder_of(dispatcher)
    registry = REGISTRY if registry is None else registry
    metrics = _RegistryMetrics.of(registry)
    microgrid_id = recorder.latest.microgrid_id
    label = str(microgrid_id)

    def on_lateness(dispatch_type: str, seconds: float) -> None:
        metrics.lateness.labels(microgrid_id=label, type=dispatch_type).observe(seconds)

    def on_sync(seconds: float) -> None:
        metrics.sync_duration.labels(microgrid_id=label).observe(seconds)

    registration = MetricsRegistration(
        microgrid_id=microgrid_id,
        registry=registry,
        _recorder=recorder,
        _metrics=metrics,
        _observers=(on_lateness, on_sync),
    )
    metrics.add(registration)
    metrics.sync_duration.labels(microgrid_id=label)  # exported from 0 on
    recorder.lateness_observers.append(on_lateness)
    recorder.sync_observers.append(on_sync)
    recorder.changed()  # so that the first scrape sees a published status
    return registration


def _recorder_of(dispatcher: object) -> StatusRecorder:
    # Imported here: the module must import without pulling in the SDK twice.
    from ._bg_service import DispatchScheduler
    from ._dispatcher import Dispatcher

    if isinstance(dispatcher, Dispatcher):
        dispatcher = dispatcher._bg_service
    if not isinstance(dispatcher, DispatchScheduler):
        raise TypeError(
            f"dispatcher must be a Dispatcher or DispatchScheduler, got {dispatcher!r}"
        )
    return dispatcher._status


def _discard(observers: list[Any], observer: object) -> None:
    if observer in observers:
        observers.remove(observer)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _RegistryMetrics] = (
    weakref.WeakKeyDictionary()
)
_by_registry_lock = threading.Lock()


class _RegistryMetrics(Collector):
    """The metrics of every dispatcher registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registrations: dict[int, MetricsRegistration] = {}
        self._lock = threading.Lock()
        self.lateness = Histogram(
            "frequenz_dispatch_event_lateness_seconds",
            "Time from a start or stop's scheduled instant to its delivery.",
            ("microgrid_id", "type"),
            buckets=EVENT_LATENESS_BUCKETS,
            registry=registry,
        )
        self.sync_duration = Histogram(
            "frequenz_dispatch_sync_duration_seconds",
            "Time a full list from the service and its reconciliation took.",
            ("microgrid_id",),
            buckets=SYNC_DURATION_BUCKETS,
            registry=registry,
        )
        registry.register(self)

    @classmethod
    def of(cls, registry: CollectorRegistry) -> _RegistryMetrics:
        with _by_registry_lock:
            metrics = _by_registry.get(registry)
            if metrics is None:
                metrics = _by_registry[registry] = cls(registry)
            return metrics

    def add(self, registration: MetricsRegistration) -> None:
        with self._lock:
            if registration.microgrid_id in self._registrations:
                raise ValueError(
                    f"a dispatcher of microgrid {registration.microgrid_id} is"
                    " registered in this registry already"
                )
            self._registrations[registration.microgrid_id] = registration

    def remove(self, registration: MetricsRegistration) -> None:
        with self._lock:
            if self._registrations.get(registration.microgrid_id) is not registration:
                return
            del self._registrations[registration.microgrid_id]
        label = str(registration.microgrid_id)
        for metric in (self.lateness, self.sync_duration):
            # Label values live in the metric; drop this microgrid's children.
            for labels in list(metric._metrics):
                if labels[0] == label:
                    metric.remove(*labels)

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges and counters of every registered dispatcher.

        Yields:
            One family per metric, a sample per microgrid.
        """
        with self._lock:
            registrations = list(self._registrations.values())
        gauges = {
            name: GaugeMetricFamily(
                f"frequenz_dispatch_{name}", text, labels=["microgrid_id", *extra]
            )
            for name, text, extra in _GAUGES
        }
        counters = {
            name: CounterMetricFamily(
                f"frequenz_dispatch_{name}", text, labels=["microgrid_id", *extra]
            )
            for name, text, extra in _COUNTERS
        }
        for registration in registrations:
            status = registration._recorder.latest
            mid = str(status.microgrid_id)
            gauges["connected"].add_metric([mid], float(status.connected))
            gauges["ready"].add_metric([mid], float(status.ready))
            for source in StateSource:
                gauges["state_source"].add_metric(
                    [mid, source.value], float(status.source is source)
                )
            for name, instant in (
                ("last_full_sync_timestamp_seconds", status.last_full_sync),
                ("last_error_timestamp_seconds", status.last_error_at),
                ("disconnected_since_timestamp_seconds", status.disconnected_since),
                ("next_change_timestamp_seconds", status.next_change),
                ("cache_synced_timestamp_seconds", status.cache_synced_at),
            ):
                if instant is not None:
                    gauges[name].add_metric([mid], _unix(instant))
            gauges["dispatches"].add_metric([mid], float(status.dispatches))
            for dispatch_type, count in sorted(status.running.items()):
                gauges["running_dispatches"].add_metric(
                    [mid, dispatch_type], float(count)
                )
            counters["resyncs"].add_metric([mid], float(status.resyncs))
            counters["reconnects"].add_metric([mid], float(status.reconnects))
            counters["failed_attempts"].add_metric([mid], float(status.failed_attempts))
            for dispatch_type, count in sorted(status.missed_runs.items()):
                counters["missed_runs"].add_metric([mid, dispatch_type], float(count))
        yield from gauges.values()
        yield from counters.values()


_GAUGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("connected", "1 while the update stream from the service is up.", ()),
    ("ready", "1 once a state to act on is held (service or cache).", ()),
    ("state_source", "1 for where the held dispatches came from.", ("source",)),
    ("last_full_sync_timestamp_seconds", "When the last full sync finished.", ()),
    ("last_error_timestamp_seconds", "When the last sync error happened.", ()),
    (
        "disconnected_since_timestamp_seconds",
        "When the current outage started.",
        (),
    ),
    ("next_change_timestamp_seconds", "The next scheduled start or stop.", ()),
    (
        "cache_synced_timestamp_seconds",
        "When the full sync held by the offline cache started from happened.",
        (),
    ),
    ("dispatches", "Dispatches held.", ()),
    ("running_dispatches", "Dispatches running now.", ("type",)),
)

_COUNTERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("resyncs", "Full lists reconciled after the first one.", ()),
    ("reconnects", "Connections re-established after being lost.", ()),
    ("failed_attempts", "Failed attempts to sync and broken streams.", ()),
    ("missed_runs", "Runs missed (their window had closed).", ("type",)),
)


def _unix(instant: datetime) -> float:
    return instant.timestamp()
