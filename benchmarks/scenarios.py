#!/usr/bin/env python3
# License: MIT
"""Benchmark scenarios for `frequenz-dispatch`, runnable against any implementation.

Only the documented API is used, so the same file runs against this repository's
library and against the PyPI reference (`frequenz-dispatch==1.0.4`):

* `frequenz.dispatch._bg_service.DispatchScheduler(microgrid_id, client)`: a
  `BackgroundService` with `start()`, `wait_for_initialization()`, `stop()`,
  `new_lifecycle_events_receiver(type)` and `new_running_state_event_receiver(type)`
  (awaited only if it returns an awaitable).
* `frequenz.dispatch.Dispatch(client_dispatch).next_run`.

The library is imported with `importlib`, so it is typed `Any` here: the two
implementations' types differ and this file must type-check against either.

Usage: `python benchmarks/scenarios.py SCENARIO [--size N] [--json]`, printing one
JSON object of figures on stdout (the last line). See `benchmarks/README.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import importlib
import importlib.metadata
import inspect
import json
import logging
import math
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any

from frequenz.api.common.v1alpha8.pagination.pagination_info_pb2 import PaginationInfo
from frequenz.api.dispatch.v1.dispatch_pb2 import ListMicrogridDispatchesResponse
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule, Weekday
from frequenz.client.dispatch.test._service import FakeService
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetComponents, TargetIds

MID = MicrogridId(1)
TYPE = "BENCH"
ALL_WEEKDAYS = [d for d in Weekday if d != Weekday.UNSPECIFIED]
TARGETS: list[TargetComponents] = [TargetIds(1), TargetIds(2, 3), TargetIds(4, 5, 6)]

# --------------------------------------------------------------------------- library


def library() -> tuple[Any, Any]:
    """Return `(DispatchScheduler, Dispatch)` of whichever library is importable."""
    bg = importlib.import_module("frequenz.dispatch._bg_service")
    pkg = importlib.import_module("frequenz.dispatch")
    return bg.DispatchScheduler, pkg.Dispatch


def library_info() -> dict[str, Any]:
    """Describe the library this process imports (proves which one was measured)."""
    info: dict[str, Any] = {"python": sys.executable, "version": None, "file": None}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        info["version"] = importlib.metadata.version("frequenz-dispatch")
    try:
        pkg = importlib.import_module("frequenz.dispatch")
        info["file"] = getattr(pkg, "__file__", None) or str(
            list(getattr(pkg, "__path__", []))
        )
    except Exception as exc:
        info["import_error"] = repr(exc)
    for dist in ("frequenz-client-dispatch", "frequenz-channels", "frequenz-sdk"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = None
    return info


async def maybe_await(value: Any) -> Any:
    """Await `value` if it is awaitable (ours may return receivers synchronously)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def running_state_receiver(scheduler: Any, dispatch_type: str = TYPE) -> Any:
    """Create a running-state receiver, awaiting the call only if needed."""
    return await maybe_await(scheduler.new_running_state_event_receiver(dispatch_type))


async def stop_scheduler(scheduler: Any) -> str | None:
    """Stop the service, bounded; return an error description if it misbehaved."""
    try:
        await asyncio.wait_for(scheduler.stop(), timeout=15)
    except Exception as exc:
        return repr(exc)
    return None


# --------------------------------------------------------------------------- fixtures


class BenchService(FakeService):
    """The stock fake service, but listing from wire bytes prepared up front.

    Both libraries read the list the way a real client does: from bytes on the
    wire, decoded and converted by the library (ours through the stub, 1.0.4
    through the client's `list()`, which calls the same stub method). Two costs
    of the stock fake are kept out of the timing:

    * it encodes every dispatch to protobuf on every call (the server's work), at
      about 110 µs each; here the dispatches are encoded and the pages serialized
      once, when preloaded (`set_dispatches`);
    * it applies `end_from`/`end_to` as `start_time + duration`, ignoring
      recurrence, which would hide every recurring dispatch whose *first*
      occurrence has ended from a library asking for `end_from=now` (1.0.4
      does). Filters are ignored here so every library sees all N dispatches.

    Create/update/delete and the stream are the stock fake's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoded: dict[int, list[Any]] = {}
        self._pages: dict[tuple[int, int], list[bytes]] = {}

    def pages(self, microgrid_id: int, size: int) -> list[bytes]:
        """Return the serialized list pages of a page size, made once."""
        pages = self._pages.get((microgrid_id, size))
        if pages is None:
            encoded = self.encoded[microgrid_id]
            pages = [
                ListMicrogridDispatchesResponse(
                    dispatches=encoded[offset : offset + size],
                    pagination_info=PaginationInfo(
                        total_items=len(encoded),
                        # Like the API's tokens, one carries its page size.
                        next_page_token=(
                            f"{size}:{offset + size}"
                            if offset + size < len(encoded)
                            else ""
                        ),
                    ),
                ).SerializeToString()
                for offset in range(0, max(1, len(encoded)), size)
            ]
            self._pages[(microgrid_id, size)] = pages
        return pages

    async def ListMicrogridDispatches(self, request: Any, timeout: int = 5) -> Any:
        encoded = self.encoded.get(request.microgrid_id)
        if encoded is None:
            return await super().ListMicrogridDispatches(request, timeout)
        token = request.pagination_params.page_token
        if token:
            size, offset = (int(part) for part in token.split(":"))
        else:
            size = request.pagination_params.page_size or max(1, len(encoded))
            offset = 0
        pages = self.pages(request.microgrid_id, size)
        index = offset // size
        await asyncio.sleep(0)
        return ListMicrogridDispatchesResponse.FromString(pages[index])


class BenchClient(FakeClient):
    """`FakeClient` on `BenchService`; `set_dispatches` also encodes them once."""

    def __init__(self) -> None:
        super().__init__()
        self._stuba = BenchService()

    def set_dispatches(
        self, microgrid_id: MicrogridId, value: list[ClientDispatch]
    ) -> None:
        super().set_dispatches(microgrid_id, value)
        service: BenchService = self._stuba  # type: ignore[assignment]
        service.encoded[int(microgrid_id)] = [d.to_protobuf() for d in value]
        # The page sizes the two libraries ask for (ours 1000, 1.0.4 none): the
        # server's serialization is done before anything is timed.
        for size in (1000, max(1, len(value))):
            service.pages(int(microgrid_id), size)


def client_dispatch(
    dispatch_id: int,
    *,
    now: datetime,
    start: datetime,
    duration: timedelta | None,
    recurrence: RecurrenceRule | None = None,
    payload: dict[str, Any] | None = None,
) -> ClientDispatch:
    """Build one client dispatch of the benchmark type."""
    created = now - timedelta(days=400)
    return ClientDispatch(
        id=DispatchId(dispatch_id),
        type=TYPE,
        start_time=start,
        duration=duration,
        target=TARGETS[dispatch_id % len(TARGETS)],
        active=True,
        dry_run=False,
        payload=(
            payload
            if payload is not None
            else {"setpoint_kw": float(dispatch_id % 97), "mode": "peak-shaving"}
        ),
        recurrence=recurrence if recurrence is not None else RecurrenceRule(),
        create_time=created,
        update_time=created,
    )


@dataclasses.dataclass
class Mix:
    """A preloaded data set and what is known about it."""

    dispatches: list[ClientDispatch]
    expected_running: set[int]
    """Ids running now and for at least the next ~20 minutes."""
    running_one_shots: list[int]
    """Ids of the running one-shot dispatches (targets for updates)."""
    counts: dict[str, int]


def build_mix(n: int, now: datetime, *, age: timedelta, minutely: bool) -> Mix:
    """Build the sync mix: N dispatches, quiet for at least ~20 minutes.

    * `i % 3 == 0`: one-shot, starting 1 h to 30 days in the future.
    * `i % 3 == 1`: one-shot, started 10 min to 2 h ago, lasting 2 days (running).
    * `i % 3 == 2`: recurring, first occurrence `age` ago, four kinds in turn:
        0. MINUTELY (HOURLY if not `minutely`), `byhours` = every hour except the
           previous, current and next one; 20 s (20 min) long; not running.
        1. MINUTELY every 15 min (HOURLY), `byhours` = three far-away hours,
           `byweekdays` = all days; 5 min (30 min) long; not running.
        2. HOURLY, no by-fields, occurrence began 5-6 min ago, 30 min long: running.
        3. HOURLY, `byweekdays` = all days, next occurrence in 20-21 min, 10 min
           long: not running.

    Nothing starts or stops within the next ~19 minutes, so "currently running"
    is stable during a measurement and idling is really idle.
    """
    hour = now.hour
    quiet_hours = [
        h for h in range(24) if h not in {(hour - 1) % 24, hour, (hour + 1) % 24}
    ]
    far_hours = sorted({(hour + 3) % 24, (hour + 9) % 24, (hour + 15) % 24})
    first = now - age
    dispatches: list[ClientDispatch] = []
    expected: set[int] = set()
    one_shots: list[int] = []
    counts = {"future_one_shot": 0, "running_one_shot": 0, "recurring": 0}
    for i in range(1, n + 1):
        kind = i % 3
        if kind == 0:
            start = now + timedelta(hours=1, seconds=(i * 7919) % (29 * 86400))
            dispatches.append(
                client_dispatch(i, now=now, start=start, duration=timedelta(minutes=15))
            )
            counts["future_one_shot"] += 1
            continue
        if kind == 1:
            start = now - timedelta(seconds=600 + (i * 131) % 6600)
            dispatches.append(
                client_dispatch(i, now=now, start=start, duration=timedelta(days=2))
            )
            expected.add(i)
            one_shots.append(i)
            counts["running_one_shot"] += 1
            continue
        counts["recurring"] += 1
        jitter = timedelta(seconds=(i * 17) % 60)
        variant = (i // 3) % 4
        rule: RecurrenceRule
        if variant == 0:
            rule = RecurrenceRule(
                frequency=Frequency.MINUTELY if minutely else Frequency.HOURLY,
                interval=1,
                byhours=list(quiet_hours),
            )
            duration = timedelta(seconds=20) if minutely else timedelta(minutes=20)
            start = first + jitter
        elif variant == 1:
            rule = RecurrenceRule(
                frequency=Frequency.MINUTELY if minutely else Frequency.HOURLY,
                interval=15 if minutely else 1,
                byhours=list(far_hours),
                byweekdays=list(ALL_WEEKDAYS),
            )
            duration = timedelta(minutes=5) if minutely else timedelta(minutes=30)
            start = first + jitter
        elif variant == 2:
            rule = RecurrenceRule(frequency=Frequency.HOURLY, interval=1)
            duration = timedelta(minutes=30)
            start = first - timedelta(minutes=5) - jitter
            expected.add(i)
        else:
            rule = RecurrenceRule(
                frequency=Frequency.HOURLY, interval=1, byweekdays=list(ALL_WEEKDAYS)
            )
            duration = timedelta(minutes=10)
            start = first + timedelta(minutes=20) + jitter
        dispatches.append(
            client_dispatch(i, now=now, start=start, duration=duration, recurrence=rule)
        )
    return Mix(dispatches, expected, one_shots, counts)


# --------------------------------------------------------------------------- helpers


class LogCounter(logging.Handler):
    """Counts warnings, notably channel overflows ("Oldest message was dropped")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.dropped: dict[str, int] = {}
        self.warnings: dict[str, int] = {}
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "Oldest message was dropped" in str(record.msg) and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            text = str(args[0])  # "Broadcast:<channel>:<ReceiverClass>:<name>"
            parts = text.split(":")
            channel = parts[1] if len(parts) > 2 else text
            self.dropped[channel] = self.dropped.get(channel, 0) + 1
            return
        self.warnings[record.name] = self.warnings.get(record.name, 0) + 1
        if len(self.samples) < 8:
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            self.samples.append(f"{record.levelname} {record.name}: {message[:300]}")

    def report(self) -> dict[str, Any]:
        fake = sum(v for k, v in self.dropped.items() if k.startswith("fakeservice"))
        client = sum(
            v for k, v in self.dropped.items() if k.startswith("GrpcStreamBroadcaster")
        )
        return {
            "dropped_by_channel": dict(self.dropped),
            "dropped_in_fake_service": fake,
            "dropped_in_client_stream_receivers": client,
            "dropped_in_library_channels": sum(self.dropped.values()) - fake - client,
            "warnings_by_logger": dict(self.warnings),
            "warning_samples": list(self.samples),
        }


LOG = LogCounter()

KEEP_ALIVE: list[Any] = []
"""Helper clients kept until exit: their stream tasks must not be collected mid-run."""


def install_log_counter() -> None:
    """Route warnings to the counter instead of stderr (thousands may come)."""
    root = logging.getLogger()
    root.addHandler(LOG)
    root.setLevel(logging.WARNING)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """n / min / p50 / p99 / max of `values` multiplied by `scale`."""

    def fmt(value: float | None) -> float | None:
        return None if value is None else round(value * scale, digits)

    return {
        "n": len(values),
        "min": fmt(min(values) if values else None),
        "p50": fmt(percentile(values, 50)),
        "p99": fmt(percentile(values, 99)),
        "max": fmt(max(values) if values else None),
    }


def current_rss_mib() -> float:
    """Resident set size right now, in MiB (Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def peak_rss_mib() -> float:
    """High-water mark of the resident set size, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def message_id(message: Any) -> int:
    """The integer id of a received dispatch or lifecycle event (-1 if none)."""
    dispatch = getattr(message, "dispatch", message)
    try:
        return int(dispatch.id)
    except (AttributeError, TypeError, ValueError):
        return -1


class Consumer:
    """Drains a receiver in a task, recording every message.

    `work_s` > 0 makes it a slow consumer: after recording a message it awaits
    `asyncio.sleep(work_s)` (a cooperative 1 ms of "work": it does not hog the
    event loop, so other consumers and the library keep running).
    """

    def __init__(
        self,
        receiver: Any,
        *,
        work_s: float = 0.0,
        on_message: Callable[[Any, float], None] | None = None,
        check_started: bool = False,
    ) -> None:
        self.receiver = receiver
        self.work_s = work_s
        self.on_message = on_message
        self.check_started = check_started
        # (id, started at receipt or None, perf_counter, wall clock, message)
        self.records: list[tuple[int, bool | None, float, float, Any]] = []
        self.error: str | None = None
        self.processing_errors = 0
        self.last_perf = time.perf_counter()
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                message = await self.receiver.receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ReceiverStoppedError or anything else
                self.error = repr(exc)
                return
            perf = time.perf_counter()
            wall = time.time()
            try:
                started = bool(message.started) if self.check_started else None
                self.records.append((message_id(message), started, perf, wall, message))
                self.last_perf = perf
                if self.on_message is not None:
                    self.on_message(message, perf)
            except Exception as exc:  # keep draining, but say what went wrong
                self.processing_errors += 1
                self.error = self.error or f"processing: {exc!r}"
            self.changed.set()
            if self.work_s:
                await asyncio.sleep(self.work_s)

    def first_arrivals(
        self, ids: set[int]
    ) -> tuple[dict[int, float], dict[int, float], int]:
        """Return, for the given dispatches, when each start and stop first came.

        Returns:
            Wall-clock arrival of the first start and first stop per id, and how
            many further (duplicate) starts or stops arrived.
        """
        starts: dict[int, float] = {}
        stops: dict[int, float] = {}
        duplicates = 0
        for dispatch_id, started, _perf, wall, _msg in self.records:
            if dispatch_id not in ids:
                continue
            bucket = starts if started else stops
            if dispatch_id in bucket:
                duplicates += 1
            else:
                bucket[dispatch_id] = wall
        return starts, stops, duplicates

    async def wait_quiet(self, quiet_s: float, limit_s: float) -> None:
        """Return once no message came for `quiet_s`, or after `limit_s`."""
        deadline = time.perf_counter() + limit_s
        while True:
            now = time.perf_counter()
            if now >= deadline or now - self.last_perf >= quiet_s:
                return
            await asyncio.sleep(min(quiet_s / 4, max(0.0, deadline - now)))

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def wait_until(
    predicate: Callable[[], bool], limit_s: float, step: float = 0.01
) -> bool:
    """Poll `predicate` until true or `limit_s` passed; return its last value."""
    deadline = time.perf_counter() + limit_s
    while not predicate():
        if time.perf_counter() >= deadline:
            return predicate()
        await asyncio.sleep(step)
    return True


async def loop_oversleep(window_s: float, period_s: float = 0.010) -> list[float]:
    """Oversleep of `asyncio.sleep(period_s)` in a loop for `window_s` (seconds)."""
    lags: list[float] = []
    deadline = time.perf_counter() + window_s
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        await asyncio.sleep(period_s)
        lags.append(time.perf_counter() - t0 - period_s)
    return lags


async def start_synced(scheduler: Any) -> tuple[float, float]:
    """Start the service and wait for its initial sync; return (t_start, t_synced)."""
    t_start = time.perf_counter()
    scheduler.start()
    await scheduler.wait_for_initialization()
    return t_start, time.perf_counter()


# --------------------------------------------------------------------------- scenarios


async def scenario_sync(args: argparse.Namespace) -> dict[str, Any]:
    """Initial sync of N preloaded dispatches; then a running-state receiver."""
    scheduler_cls, _ = library()
    now = datetime.now(timezone.utc)
    t_build = time.perf_counter()
    mix = build_mix(args.size, now, age=timedelta(days=30), minutely=True)
    result: dict[str, Any] = {
        "size": args.size,
        "mix": mix.counts,
        "build_fixture_s": round(time.perf_counter() - t_build, 3),
    }
    client = BenchClient()
    client.set_dispatches(MID, mix.dispatches)
    gc.collect()
    rss_before = current_rss_mib()
    scheduler = scheduler_cls(MID, client)
    t_start, t_synced = await start_synced(scheduler)
    result["init_s"] = round(t_synced - t_start, 4)
    result["rss_after_init_mib"] = round(current_rss_mib() - rss_before, 1)

    expected = mix.expected_running
    seen: set[int] = set()
    done = asyncio.Event()
    done_at: list[float] = []

    def on_message(message: Any, perf: float) -> None:
        dispatch_id = message_id(message)
        if dispatch_id in expected and dispatch_id not in seen:
            seen.add(dispatch_id)
            if len(seen) == len(expected):
                done_at.append(perf)
                done.set()

    receiver = await running_state_receiver(scheduler)
    t_receiver = time.perf_counter()
    consumer = Consumer(receiver, on_message=on_message)
    if expected:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=args.wait)
    else:
        done_at.append(time.perf_counter())
    await consumer.wait_quiet(0.5, 5.0)  # catch stragglers / unexpected extras
    await consumer.close()
    gc.collect()
    result.update(
        {
            "receiver_create_s": round(t_receiver - t_synced, 4),
            "running_expected": len(expected),
            "running_delivered": len(seen),
            "running_delivered_s": round(done_at[0] - t_synced, 4) if done_at else None,
            "start_to_all_running_s": round(done_at[0] - t_start, 4)
            if done_at
            else None,
            "messages_total": len(consumer.records),
            "messages_unexpected": sum(
                1 for r in consumer.records if r[0] not in expected
            ),
            "peak_rss_delta_mib": round(peak_rss_mib() - rss_before, 1),
            "rss_growth_mib": round(current_rss_mib() - rss_before, 1),
            "consumer_error": consumer.error,
        }
    )
    result["stop_error"] = await stop_scheduler(scheduler)
    if args.baseline:
        # After the measurement, so its transient memory is not in the peak RSS.
        stock = FakeClient()
        stock.set_dispatches(MID, list(mix.dispatches))
        t_list = time.perf_counter()
        listed = 0
        async for page in stock.list(MID):
            for _ in page:
                listed += 1
        result["fake_list_s"] = round(time.perf_counter() - t_list, 3)
        result["fake_list_count"] = listed
    return result


async def scenario_next_run(args: argparse.Namespace) -> dict[str, Any]:
    """Microseconds per `Dispatch(d).next_run` for a minutely rule of growing age."""
    _, dispatch_cls = library()
    now = datetime.now(timezone.utc)
    hour = now.hour
    cases: list[tuple[str, timedelta, RecurrenceRule]] = [
        (
            "minutely_1d",
            timedelta(days=1),
            RecurrenceRule(frequency=Frequency.MINUTELY, interval=1),
        ),
        (
            "minutely_30d",
            timedelta(days=30),
            RecurrenceRule(frequency=Frequency.MINUTELY, interval=1),
        ),
        (
            "minutely_1y",
            timedelta(days=365),
            RecurrenceRule(frequency=Frequency.MINUTELY, interval=1),
        ),
        (
            "minutely_byhours_30d",
            timedelta(days=30),
            RecurrenceRule(
                frequency=Frequency.MINUTELY,
                interval=1,
                byhours=[h for h in range(24) if h not in {hour, (hour + 1) % 24}],
            ),
        ),
    ]
    out: dict[str, Any] = {"budget_s_per_case": args.budget}
    for name, age, rule in cases:
        # whole seconds: the API rounds start times to seconds anyway
        start = now.replace(microsecond=0) - age + timedelta(seconds=7)
        cd = client_dispatch(
            1, now=now, start=start, duration=timedelta(seconds=30), recurrence=rule
        )
        construct: list[float] = []
        for _ in range(200):
            t0 = time.perf_counter()
            dispatch_cls(cd)
            construct.append(time.perf_counter() - t0)
        times: list[float] = []
        correct = True
        deadline = time.perf_counter() + args.budget
        while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 2000):
            called_at = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            next_run = dispatch_cls(cd).next_run
            times.append(time.perf_counter() - t0)
            if name.startswith("minutely_") and "by" not in name:
                # the first occurrence at or after the call, on the start's grid
                ok = (
                    next_run is not None
                    and next_run >= called_at - timedelta(milliseconds=1)
                    and next_run - called_at <= timedelta(seconds=60)
                    and (next_run - start) % timedelta(minutes=1) == timedelta(0)
                )
                correct = correct and ok
        out[name] = {
            "next_run_us": round((percentile(times, 50) or 0.0) * 1e6, 3),
            "min_us": round(min(times) * 1e6, 3),
            "calls": len(times),
            "construct_us": round((percentile(construct, 50) or 0.0) * 1e6, 3),
            "correct": correct if "by" not in name else None,
        }
    return out


async def scenario_idle(args: argparse.Namespace) -> dict[str, Any]:
    """CPU and event-loop lag while N synced dispatches wait for their time."""
    scheduler_cls, _ = library()
    now = datetime.now(timezone.utc)
    mix = build_mix(args.size, now, age=timedelta(days=30), minutely=True)
    client = BenchClient()
    client.set_dispatches(MID, mix.dispatches)
    gc.collect()
    scheduler = scheduler_cls(MID, client)
    t_start, t_synced = await start_synced(scheduler)
    receiver = await running_state_receiver(scheduler)
    consumer = Consumer(receiver)
    await wait_until(
        lambda: len(consumer.records) >= len(mix.expected_running), args.wait
    )
    await consumer.wait_quiet(1.0, 10.0)
    gc.collect()

    before = len(consumer.records)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(args.idle)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    during = len(consumer.records) - before

    lags = await loop_oversleep(args.probe)

    await consumer.close()
    result = {
        "size": args.size,
        "init_s": round(t_synced - t_start, 4),
        "idle_window_s": round(wall1 - wall0, 3),
        "cpu_s": round(cpu1 - cpu0, 4),
        "cpu_pct": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3),
        "messages_during_idle": during,
        "probe_window_s": args.probe,
        "loop_lag_ms": summary(lags, 1e3),
        "stop_error": await stop_scheduler(scheduler),
    }
    return result


async def update_baseline(
    dispatches: list[ClientDispatch], targets: list[int], count: int
) -> dict[str, Any]:
    """Latency of the fake + client alone: update -> raw `client.stream()` receipt."""
    stock = FakeClient()
    KEEP_ALIVE.append(stock)
    stock.set_dispatches(MID, list(dispatches))
    receiver = stock.stream(MID)
    await asyncio.sleep(0.2)  # let the broadcaster subscribe to the fake service
    call: list[float] = []
    after: list[float] = []
    lost = 0
    for i in range(count):
        dispatch_id = DispatchId(targets[i % len(targets)])
        t0 = time.perf_counter()
        await stock.update(
            microgrid_id=MID,
            dispatch_id=dispatch_id,
            new_fields={"payload": {"tag": f"b{i}"}},
        )
        t1 = time.perf_counter()
        try:
            while True:
                event = await asyncio.wait_for(receiver.receive(), timeout=2)
                if event.dispatch.payload.get("tag") == f"b{i}":
                    break
        except TimeoutError:
            lost += 1
            continue
        t2 = time.perf_counter()
        call.append(t1 - t0)
        after.append(t2 - t1)
    receiver.close()
    return {
        "updates": count,
        "lost": lost,
        "call_ms": summary(call, 1e3),
        "after_return_ms": summary(after, 1e3),
    }


async def scenario_updates(args: argparse.Namespace) -> dict[str, Any]:
    """Payload updates of running dispatches with N synced: latency and delivery."""
    scheduler_cls, _ = library()
    now = datetime.now(timezone.utc)
    mix = build_mix(args.size, now, age=timedelta(days=1), minutely=False)
    warmup, sequential, unpaced = 20, args.sequential, args.updates
    needed = warmup + sequential + unpaced
    if len(mix.running_one_shots) < needed:
        raise SystemExit(f"--size too small: need {needed} running one-shot dispatches")
    targets = mix.running_one_shots[:needed]
    # The fake looks the updated dispatch up by a linear scan: keep the targets at
    # the front of its list so the scan stays short (the order means nothing else).
    by_id = {int(d.id): d for d in mix.dispatches}
    front = set(targets)
    ordered = [by_id[t] for t in targets]
    ordered += [d for d in mix.dispatches if int(d.id) not in front]

    result: dict[str, Any] = {"size": args.size, "mix": mix.counts}
    result["baseline_fake_client"] = await update_baseline(ordered, targets, 200)

    client = BenchClient()
    client.set_dispatches(MID, ordered)
    scheduler = scheduler_cls(MID, client)
    t_start, t_synced = await start_synced(scheduler)
    result["init_s"] = round(t_synced - t_start, 4)

    arrivals: dict[tuple[int, str], float] = {}
    waiters: dict[tuple[int, str], asyncio.Event] = {}

    def on_message(message: Any, perf: float) -> None:
        payload = getattr(message, "payload", None) or {}
        tag = payload.get("tag") if isinstance(payload, dict) else None
        if tag is None:
            return
        key = (message_id(message), str(tag))
        if key not in arrivals:
            arrivals[key] = perf
            event = waiters.get(key)
            if event is not None:
                event.set()

    receiver = await running_state_receiver(scheduler)
    consumer = Consumer(receiver, on_message=on_message)
    await wait_until(lambda: len(consumer.records) >= len(mix.expected_running), 60)
    await consumer.wait_quiet(0.3, 10.0)
    result["initial_messages"] = len(consumer.records)

    async def update(dispatch_id: int, tag: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        await client.update(
            microgrid_id=MID,
            dispatch_id=DispatchId(dispatch_id),
            new_fields={"payload": {"tag": tag, "setpoint_kw": 42.0}},
        )
        return t0, time.perf_counter()

    async def one_at_a_time(ids: list[int], prefix: str) -> dict[str, Any]:
        call: list[float] = []
        after: list[float] = []
        lost = 0
        for n, dispatch_id in enumerate(ids):
            key = (dispatch_id, f"{prefix}{n}")
            waiters[key] = asyncio.Event()
            t0, t1 = await update(dispatch_id, key[1])
            try:
                await asyncio.wait_for(waiters[key].wait(), timeout=2)
            except TimeoutError:
                lost += 1
                continue
            call.append(arrivals[key] - t0)
            after.append(arrivals[key] - t1)
        return {
            "updates": len(ids),
            "lost": lost,
            "from_call_ms": summary(call, 1e3),
            "after_return_ms": summary(after, 1e3),
        }

    result["warmup"] = await one_at_a_time(targets[:warmup], "w")
    result["sequential"] = await one_at_a_time(
        targets[warmup : warmup + sequential], "s"
    )

    # Unpaced: no waiting for delivery; one `asyncio.sleep(0)` after each call so
    # the fake's stream task can forward the event (the fake service never yields,
    # and its own 50-slot buffer would otherwise drop what the library never saw).
    ids = targets[warmup + sequential :]
    sent: list[tuple[tuple[int, str], float, float]] = []
    t_first = time.perf_counter()
    for n, dispatch_id in enumerate(ids):
        key = (dispatch_id, f"u{n}")
        t0, t1 = await update(dispatch_id, key[1])
        sent.append((key, t0, t1))
        await asyncio.sleep(0)
    t_sent = time.perf_counter()

    def delivered() -> int:
        return sum(1 for key, _, _ in sent if key in arrivals)

    progress_at = time.perf_counter()
    last = -1
    hard_deadline = time.perf_counter() + args.settle
    while time.perf_counter() < hard_deadline:
        count = delivered()
        if count == len(sent):
            break
        if count != last:
            last, progress_at = count, time.perf_counter()
        elif time.perf_counter() - progress_at > 3.0:
            break
        await asyncio.sleep(0.02)
    from_call = [arrivals[k] - t0 for k, t0, _ in sent if k in arrivals]
    after = [arrivals[k] - t1 for k, _, t1 in sent if k in arrivals]
    last_arrival = max(
        (arrivals[k] for k, _, _ in sent if k in arrivals), default=t_sent
    )
    result["unpaced"] = {
        "updates": len(sent),
        "delivered": delivered(),
        "producer_s": round(t_sent - t_first, 4),
        "all_handled_s": round(last_arrival - t_first, 4),
        "delivered_per_s": round(delivered() / max(1e-9, last_arrival - t_first), 1),
        "from_call_ms": summary(from_call, 1e3),
        "after_return_ms": summary(after, 1e3),
    }
    await consumer.close()
    result["stop_error"] = await stop_scheduler(scheduler)
    return result


async def scenario_burst(args: argparse.Namespace) -> dict[str, Any]:
    """N dispatches created through the stream, all starting at the same instant."""
    scheduler_cls, _ = library()
    count = args.size
    client = BenchClient()
    scheduler = scheduler_cls(MID, client)
    t_start, t_synced = await start_synced(scheduler)

    created_seen: set[int] = set()
    pending: set[int] = set()
    created_changed = asyncio.Event()

    def on_lifecycle(event: Any, _perf: float) -> None:
        dispatch = getattr(event, "dispatch", None)
        if dispatch is not None and type(event).__name__ == "Created":
            created_seen.add(int(dispatch.id))
            pending.discard(int(dispatch.id))
            created_changed.set()

    lifecycle = Consumer(
        scheduler.new_lifecycle_events_receiver(TYPE), on_message=on_lifecycle
    )
    slow = Consumer(
        await running_state_receiver(scheduler), work_s=0.001, check_started=True
    )
    fast = Consumer(await running_state_receiver(scheduler), check_started=True)
    await asyncio.sleep(0.2)  # let the library's stream subscribe to the fake

    # Creation is paced so that at most `window` creations are not yet confirmed by
    # a `Created` lifecycle event: neither the fake's nor any 50-slot stream buffer
    # can overflow because of the harness. (Gives up pacing after 3 timeouts.)
    window = 16
    pacing_timeouts = 0

    async def create(start: datetime, duration: timedelta, tag: int) -> int:
        nonlocal pacing_timeouts
        while len(pending) >= window and pacing_timeouts < 3:
            created_changed.clear()
            try:
                await asyncio.wait_for(created_changed.wait(), timeout=2)
            except TimeoutError:
                pacing_timeouts += 1
        made = await client.create(
            microgrid_id=MID,
            type=TYPE,
            start_time=start,
            duration=duration,
            target=TARGETS[tag % len(TARGETS)],
            payload={"burst": tag},
        )
        if int(made.id) not in created_seen:
            pending.add(int(made.id))
        await asyncio.sleep(0)
        return int(made.id)

    # Calibrate the creation rate with dispatches far in the future, then put the
    # common start instant far enough ahead (x3.5 margin) for all creations.
    calibration = 50
    far = datetime.now(timezone.utc) + timedelta(days=1)
    t0 = time.perf_counter()
    for n in range(calibration):
        await create(far, timedelta(minutes=1), n)
    per_create = (time.perf_counter() - t0) / calibration
    chosen_at = time.time()
    lead = min(45.0, max(3.0, 2.0 + 3.5 * count * per_create))
    start_ts = math.ceil(chosen_at + lead)  # the fake rounds start times to 1 s
    start = datetime.fromtimestamp(start_ts, tz=timezone.utc)
    duration_s = max(2, math.ceil(count * 0.002))  # the slow consumer drains first
    duration = timedelta(seconds=duration_s)

    burst_ids: set[int] = set()
    overran = False
    t_create = time.perf_counter()
    for n in range(count):
        try:
            burst_ids.add(await create(start, duration, calibration + n))
        except ValueError:  # start_time is now in the past: creation overran it
            overran = True
            break
    creation_s = time.perf_counter() - t_create
    created_by = time.time()

    stop_ts = start_ts + duration_s
    await asyncio.sleep(max(0.0, stop_ts + 0.5 - time.time()))

    def complete(consumer: Consumer) -> bool:
        mine = sum(1 for r in consumer.records if r[0] in burst_ids)
        return mine >= 2 * len(burst_ids)

    deadline = time.perf_counter() + count * 0.0025 + 10
    while time.perf_counter() < deadline:
        if complete(slow) and complete(fast):
            break
        latest = max(slow.last_perf, fast.last_perf)
        if time.perf_counter() - latest > 2.0:
            break
        await asyncio.sleep(0.05)

    def analyse(consumer: Consumer) -> dict[str, Any]:
        starts, stops, extra = consumer.first_arrivals(burst_ids)
        return {
            "starts_delivered": len(starts),
            "stops_delivered": len(stops),
            "expected": len(burst_ids),
            "duplicates": extra,
            "start_lateness_ms": summary(
                [w - start_ts for w in starts.values()], 1e3, 2
            ),
            "stop_lateness_ms": summary([w - stop_ts for w in stops.values()], 1e3, 2),
            "consumer_error": consumer.error,
        }

    result: dict[str, Any] = {
        "size": count,
        "init_s": round(t_synced - t_start, 4),
        "per_create_ms": round(per_create * 1e3, 3),
        "lead_s": round(start_ts - chosen_at, 3),
        "creation_s": round(creation_s, 3),
        "created": len(burst_ids),
        "creation_overran_start": overran or created_by > start_ts,
        "slack_before_start_s": round(start_ts - created_by, 3),
        "pacing_timeouts": pacing_timeouts,
        "lifecycle_created_seen": len(created_seen & burst_ids),
        "duration_s": duration_s,
        "slow_consumer": analyse(slow)
        | {"work": "await asyncio.sleep(0.001) per message"},
        "fast_consumer": analyse(fast),
    }
    for consumer in (lifecycle, slow, fast):
        await consumer.close()
    result["stop_error"] = await stop_scheduler(scheduler)
    return result


async def scenario_lateness(args: argparse.Namespace) -> dict[str, Any]:
    """Staggered starts and stops; lateness of each message vs the wall clock."""
    scheduler_cls, _ = library()
    count = args.size
    step = args.step_ms / 1000
    # What this machine allows right now, without any library: the oversleep of a
    # bare `asyncio.sleep(0.01)` loop. Lateness cannot be much better than this.
    floor = await loop_oversleep(2.0)
    now = datetime.now(timezone.utc)
    first = now + timedelta(seconds=args.lead)
    duration = timedelta(seconds=1)
    due_start: dict[int, float] = {}
    dispatches: list[ClientDispatch] = []
    for n in range(count):
        start = first + timedelta(seconds=n * step)
        dispatches.append(
            client_dispatch(n + 1, now=now, start=start, duration=duration)
        )
        due_start[n + 1] = start.timestamp()
    client = BenchClient()
    client.set_dispatches(MID, dispatches)
    scheduler = scheduler_cls(MID, client)
    t_start, t_synced = await start_synced(scheduler)
    consumer = Consumer(await running_state_receiver(scheduler), check_started=True)
    ready_by = time.time()
    last_stop = first.timestamp() + (count - 1) * step + duration.total_seconds()
    await asyncio.sleep(max(0.0, last_stop + 1.0 - time.time()))
    await consumer.wait_quiet(0.5, 5.0)

    starts, stops, extra = consumer.first_arrivals(set(due_start))
    span = duration.total_seconds()
    await consumer.close()
    return {
        "size": count,
        "step_ms": args.step_ms,
        "init_s": round(t_synced - t_start, 4),
        "ready_before_first_start_s": round(first.timestamp() - ready_by, 3),
        "loop_oversleep_without_library_ms": summary(floor, 1e3, 3),
        "starts_delivered": len(starts),
        "stops_delivered": len(stops),
        "expected": count,
        "duplicates": extra,
        "start_lateness_ms": summary(
            [w - due_start[i] for i, w in starts.items()], 1e3, 3
        ),
        "stop_lateness_ms": summary(
            [w - due_start[i] - span for i, w in stops.items()], 1e3, 3
        ),
        "consumer_error": consumer.error,
        "stop_error": await stop_scheduler(scheduler),
    }


SCENARIOS: dict[
    str, tuple[Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]], int]
] = {
    "sync": (scenario_sync, 10_000),
    "next_run": (scenario_next_run, 0),
    "idle": (scenario_idle, 1_000),
    "updates": (scenario_updates, 10_000),
    "burst": (scenario_burst, 5_000),
    "lateness": (scenario_lateness, 200),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--size", type=int, default=None, help="N (meaning per scenario)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one compact JSON line"
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="sync: also time the stock fake's list()",
    )
    parser.add_argument("--wait", type=float, default=120.0, help="bounded waits (s)")
    parser.add_argument(
        "--budget", type=float, default=2.0, help="next_run: s per case"
    )
    parser.add_argument("--idle", type=float, default=5.0, help="idle: CPU window (s)")
    parser.add_argument("--probe", type=float, default=3.0, help="idle: lag window (s)")
    parser.add_argument(
        "--updates", type=int, default=1000, help="updates: unpaced count"
    )
    parser.add_argument(
        "--sequential", type=int, default=300, help="updates: one-at-a-time"
    )
    parser.add_argument(
        "--settle", type=float, default=20.0, help="updates: max settle (s)"
    )
    parser.add_argument("--step-ms", type=float, default=47.0, help="lateness: stagger")
    parser.add_argument(
        "--lead", type=float, default=3.0, help="lateness: s to first start"
    )
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = SCENARIOS[args.scenario][1]
    return args


async def run_scenario(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario; snapshot the log counters before the loop is torn down."""
    try:
        return await SCENARIOS[args.scenario][0](args)
    finally:
        out["logs"] = LOG.report()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_log_counter()
    out: dict[str, Any] = {"scenario": args.scenario, "size": args.size}
    load_before = os.getloadavg()
    status = 0
    t0 = time.perf_counter()
    try:
        out["library"] = library_info()
        out["result"] = asyncio.run(run_scenario(args, out))
    except BaseException as exc:  # report, never hang or print a bare traceback
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
        out["traceback"] = traceback.format_exc().splitlines()[-12:]
        status = 1
    out.setdefault("logs", LOG.report())
    out["elapsed_s"] = round(time.perf_counter() - t0, 3)
    out["host"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    text = (
        json.dumps(out, default=str)
        if args.json
        else json.dumps(out, default=str, indent=2)
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
