# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Benchmark of the dispatch cache store: writes, full syncs and loads.

Prints, for real SQLite files in a temporary folder:

* the amortized cost per stream change recorded in bursts through the
  scheduler's `CacheLink` (batched on its writer thread) until written, and how
  many transactions the burst took;
* the cost of writing a full sync of N dispatches to an empty file, and of
  writing the same full sync again (unchanged: only the differences are written);
* the cost of loading N cached dispatches (the start-up path), with and without
  recurrence rules;
* through the scheduler's `CacheLink` on a real event loop, with a 1 ms ticker
  task: the longest gap between its ticks (the event loop's longest stall)
  while a changed full sync of N is written, and while a burst of 5,000 stream
  changes is recorded and written, with the loop-side cost per change.

Usage: `.venv/bin/python benchmarks/cache_bench.py [--size N] [--repeat R]
[--only changes|sync|load|stall]`.

The `stall` part works with the link of earlier versions too (which wrote on the
event loop), to compare in one run: `PYTHONPATH=<base worktree>/src
.venv/bin/python benchmarks/cache_bench.py --only stall`.
The machine is shared and noisy: read the figures as orders of magnitude and
compare them as ratios, each is the best of `--repeat` runs (the load also
prints the process's CPU time, which other processes disturb less).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId, TargetIds

from frequenz.dispatch import Dispatch
from frequenz.dispatch._cache import DispatchCache
from frequenz.dispatch._cache._link import CacheLink
from frequenz.dispatch._wire import dispatch_from_protobuf

BASE = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def make(count: int, *, gen: int = 0, recurring: bool = False) -> list[Dispatch]:
    """Dispatches as they arrive from the wire, each with a small payload."""
    rule = (
        RecurrenceRule(frequency=Frequency.HOURLY, byminutes=[0, 30])
        if recurring
        else RecurrenceRule()
    )
    return [
        dispatch_from_protobuf(
            ClientDispatch(
                id=DispatchId(index + 1),
                type=f"TYPE_{index % 10}",
                start_time=BASE + timedelta(minutes=index),
                duration=timedelta(minutes=15),
                target=TargetIds(index % 50, 100),
                active=True,
                dry_run=False,
                payload={"power": 1000.0 + index, "gen": gen},
                recurrence=rule,
                create_time=BASE,
                update_time=BASE + timedelta(seconds=gen),
                end_time=None,
            ).to_protobuf()
        )
        for index in range(count)
    ]


def best(repeat: int, run: Callable[[], float]) -> float:
    """The best of `repeat` timings (seconds)."""
    return min(run() for _ in range(repeat))


@contextlib.contextmanager
def _traced_commits() -> Iterator[list[str]]:
    """Collect the COMMITs of the SQLite connections opened meanwhile."""
    commits: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)
        connection.set_trace_callback(
            lambda statement: (
                commits.append(statement)
                if statement.strip().upper() == "COMMIT"
                else None
            )
        )
        return connection

    with mock.patch.object(sqlite3, "connect", traced):
        yield commits


async def _changes_run(path: Path, burst: list[Dispatch]) -> tuple[float, int]:
    cache = DispatchCache.open(path, 1)
    cache.replace_all(make(len(burst)), BASE)
    cache.close()
    with _traced_commits() as commits:
        link = CacheLink(path, MicrogridId(1), max_age=None, clock=lambda: BASE)
        await link.load()
        began = time.perf_counter()
        for number, dispatch in enumerate(burst):
            link.changed(dispatch.id, dispatch)
            if number % 100 == 99:
                await asyncio.sleep(0)  # as from the stream: the loop runs between
        await link.flushed()
        elapsed = time.perf_counter() - began
        await link.close()
    return elapsed, len(commits)


def bench_changes(folder: Path, size: int, repeat: int) -> None:
    """Bursts of stream changes through the scheduler's link, until written."""
    burst = make(size, gen=1)
    transactions = 0

    def run() -> float:
        nonlocal transactions
        path = folder / f"changes-{time.monotonic_ns()}.sqlite3"
        elapsed, transactions = asyncio.run(_changes_run(path, burst))
        return elapsed

    elapsed = best(repeat, run)
    print(
        f"changes  burst of {size:>7,}: {elapsed * 1e6 / size:7.1f} µs/change"
        f"  ({elapsed * 1e3:8.1f} ms, {transactions} transactions)"
    )


def bench_full_sync(folder: Path, size: int, repeat: int) -> None:
    """A full sync written to an empty file, then the same one again."""
    dispatches = make(size)
    again = 0.0

    def run() -> float:
        nonlocal again
        cache = DispatchCache.open(folder / f"sync-{time.monotonic_ns()}.sqlite3", 1)
        began = time.perf_counter()
        cache.replace_all(dispatches, BASE)
        first = time.perf_counter() - began
        began = time.perf_counter()
        cache.replace_all(dispatches, BASE + timedelta(minutes=1))
        again = time.perf_counter() - began
        cache.close()
        return first

    elapsed = best(repeat, run)
    print(
        f"sync     full of {size:>9,}: {elapsed * 1e3:8.1f} ms"
        f" ({elapsed * 1e6 / size:5.1f} µs/dispatch); unchanged again:"
        f" {again * 1e3:7.1f} ms"
    )


def bench_load(folder: Path, size: int, repeat: int, *, recurring: bool) -> None:
    """Opening and loading a cache of `size` dispatches (a fresh process's path)."""
    path = folder / f"load-{recurring}.sqlite3"
    cache = DispatchCache.open(path, 1)
    cache.replace_all(make(size, recurring=recurring), BASE)
    cache.close()
    size_mb = path.stat().st_size / 1e6

    cpu: list[float] = []

    def run() -> float:
        began = time.perf_counter()
        began_cpu = time.process_time()
        loaded = DispatchCache.open(path, 1)
        state = loaded.load()
        elapsed = time.perf_counter() - began
        cpu.append(time.process_time() - began_cpu)
        loaded.close()
        assert state is not None and len(state.dispatches) == size
        return elapsed

    elapsed = best(repeat, run)
    kind = "recurring" if recurring else "one-off"
    print(
        f"load     {size:>7,} {kind:>9}: {elapsed * 1e3:8.1f} ms"
        f" ({elapsed * 1e6 / size:5.1f} µs/dispatch, file {size_mb:.1f} MB;"
        f" CPU {min(cpu) * 1e3:.0f} ms)"
    )


class Ticker:
    """A task that sleeps 1 ms at a time and keeps the longest gap between ticks."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.max_gap = 0.0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.max_gap

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now


async def _maybe(result: object) -> object:
    # The earlier link's methods are synchronous; the current ones partly async.
    return await result if inspect.isawaitable(result) else result


async def _written(link: CacheLink) -> None:
    flushed = getattr(link, "flushed", None)
    if flushed is not None:
        await flushed()


async def _stall_run(
    folder: Path, size: int, old: list[Dispatch], new: list[Dispatch]
) -> tuple[float, float, float, float, float, float]:
    path = folder / f"stall-{time.monotonic_ns()}.sqlite3"
    cache = DispatchCache.open(path, 1)
    cache.replace_all(old, BASE)
    cache.close()
    link = CacheLink(path, MicrogridId(1), max_age=None, clock=lambda: BASE)
    state = await _maybe(link.load())
    assert state is not None
    ticker = Ticker()
    ticker.start()
    await asyncio.sleep(0.05)
    idle = await ticker.stop()  # the ticker's own gap with nothing to do

    ticker.start()
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    link.synced(new)  # every dispatch changed: all N rows rewritten
    await _written(link)
    sync_total = time.perf_counter() - began
    await asyncio.sleep(0.01)
    sync_stall = await ticker.stop()

    burst = make(5_000, gen=2)
    ticker.start()
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    for dispatch in burst:
        link.changed(dispatch.id, dispatch)
    recorded = time.perf_counter() - began
    await _written(link)
    await asyncio.sleep(0.3)  # past the batch interval: the earlier link's timer
    burst_stall = await ticker.stop()
    began = time.perf_counter()
    await _maybe(link.close())
    closed = time.perf_counter() - began
    return idle, sync_stall, sync_total, burst_stall, recorded / len(burst), closed


def bench_stall(folder: Path, size: int, repeat: int) -> None:
    """The event loop's longest stall while the link writes (real loop)."""
    old, new = make(size, gen=0), make(size, gen=1)
    runs = [asyncio.run(_stall_run(folder, size, old, new)) for _ in range(repeat)]
    # The median run of each figure: a stall is a maximum already.
    idle, sync_stall, sync_total, burst_stall, per_change, closed = (
        sorted(values)[len(values) // 2] for values in zip(*runs, strict=True)
    )
    print(
        f"stall    full sync of {size:,} changed: longest loop stall"
        f" {sync_stall * 1e3:7.1f} ms (written in {sync_total * 1e3:7.1f} ms;"
        f" idle ticker gap {idle * 1e3:.1f} ms)"
    )
    print(
        f"stall    burst of 5,000 changes: longest loop stall"
        f" {burst_stall * 1e3:7.1f} ms; on the loop {per_change * 1e6:5.1f}"
        f" µs/change; close {closed * 1e3:.1f} ms"
    )


def main() -> None:
    """Run every benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("changes", "sync", "load", "stall"),
        action="append",
        help="run only these parts (repeatable); all by default",
    )
    args = parser.parse_args()
    parts = set(args.only or ("changes", "sync", "load", "stall"))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if "changes" in parts:
            for burst in (100, 5_000):
                bench_changes(folder, burst, args.repeat)
        if "sync" in parts:
            bench_full_sync(folder, args.size, args.repeat)
        if "load" in parts:
            bench_load(folder, args.size, args.repeat, recurring=False)
            bench_load(folder, args.size, args.repeat, recurring=True)
        if "stall" in parts:
            bench_stall(folder, args.size, args.repeat)


if __name__ == "__main__":
    main()
