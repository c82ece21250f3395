#!/usr/bin/env python3
# License: MIT
"""Memory held per dispatch after a full sync, and the sync time, at N dispatches.

Uses the `sync` scenario's fixture (`scenarios.py`: the sync mix on `BenchClient`,
whose list answers from wire bytes prepared up front). Each measurement runs in
its own subprocess, one at a time:

* `rss`: RSS (from `/proc/self/statm`) just before `start()` and after
  `wait_for_initialization()` plus `gc.collect()`; the delta divided by N, the
  sync time (`start()` to initialized), and a breakdown of the bytes reachable
  from the held dispatches by kind (each object counted once, so what is shared
  counts once): the dispatch objects themselves, each field (payload dicts,
  recurrence objects, datetimes, targets, ...), our per-dispatch entries and the
  schedule's containers.
* `tracemalloc`: the same sync under `tracemalloc` (1 frame): the traced bytes
  retained after the sync divided by N, and the top allocation sites with the
  kind each one is.

`--src DIR` (repeatable) runs the same measurements with `PYTHONPATH=DIR`, so
the code of another worktree (for example today's main) is measured in the same
run; the runs alternate `--repeat` times and the best sync time and the median
RSS are reported.

Usage:

    .venv/bin/python benchmarks/memory_bench.py --size 100000 \
        --src /work/h-sync-before/src --src src [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------ in the child

_ATOMIC = (int, float, bool, type(None), complex)


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of `obj` and everything it references that is not in `seen` yet."""
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | Enum):
            continue
        if callable(item) and not hasattr(item, "__dict__"):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, (str, bytes, *_ATOMIC)):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        else:
            attributes = getattr(item, "__dict__", None)
            if isinstance(attributes, dict):
                stack.append(attributes)
            for cls in type(item).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    if slot in ("__dict__", "__weakref__"):
                        continue
                    value = getattr(item, slot, None)
                    if value is not None:
                        stack.append(value)
    return total


def fields_of(obj: Any) -> Iterable[tuple[str, Any]]:
    """The (name, value) pairs of an object's instance attributes."""
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        yield from attributes.items()
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot in ("__dict__", "__weakref__") or not hasattr(obj, slot):
                continue
            yield slot, getattr(obj, slot)


def breakdown(scheduler: Any) -> dict[str, int]:
    """Bytes reachable from the held dispatches, by kind (shared objects once)."""
    schedule = scheduler._schedule
    entries: dict[Any, Any] = schedule._entries
    seen: set[int] = set()
    kinds: dict[str, int] = {}

    def add(kind: str, size: int) -> None:
        kinds[kind] = kinds.get(kind, 0) + size

    # Field values first, so a value shared between a dispatch and an entry is
    # counted under the field.
    dispatches = []
    for entry in entries.values():
        dispatch = getattr(entry, "dispatch", entry)
        dispatches.append(dispatch)
        for name, value in fields_of(dispatch):
            add(f"field {name}", deep_size(value, seen))
    for dispatch in dispatches:
        seen.add(id(dispatch))
        size = sys.getsizeof(dispatch)
        attributes = getattr(dispatch, "__dict__", None)
        if isinstance(attributes, dict) and id(attributes) not in seen:
            seen.add(id(attributes))
            size += sys.getsizeof(attributes)
        add("dispatch objects (+ __dict__)", size)
    for entry in entries.values():
        if entry is getattr(entry, "dispatch", None):
            continue
        add("schedule entries", deep_size(entry, seen))
    for name, value in fields_of(schedule):
        if isinstance(value, dict | list | set | tuple) or hasattr(value, "keys"):
            add(f"schedule.{name}", deep_size(value, seen))
    return kinds


KIND_BY_FILE = (
    ("json_format", "payload dicts (MessageToDict)"),
    ("_recurrence", "our occurrences cache"),
    ("recurrence", "recurrence objects (client RecurrenceRule)"),
    ("conversion", "datetimes (to_datetime)"),
    ("id.py", "ids (DispatchId)"),
    ("_wire", "our conversion (fields dict, timedelta, ...)"),
    ("_dispatch", "dispatch objects"),
    ("_schedule", "our schedule entries / heap"),
    ("_bg_service", "scheduler"),
    ("_sync", "sync (lists, sets)"),
    ("types", "client types (targets, ids)"),
    ("message", "protobuf"),
)


def kind_of(filename: str) -> str:
    base = os.path.basename(filename)
    for needle, kind in KIND_BY_FILE:
        if needle in base:
            return kind
    return "other"


async def measure(size: int, use_tracemalloc: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    scenarios: Any = importlib.import_module("scenarios")

    scheduler_cls, _ = scenarios.library()
    now = datetime.now(timezone.utc)
    mix = scenarios.build_mix(size, now, age=timedelta(days=30), minutely=True)
    client = scenarios.BenchClient()
    client.set_dispatches(scenarios.MID, mix.dispatches)
    del mix
    gc.collect()
    result: dict[str, Any] = {"size": size, "library": scenarios.library_info()}
    if use_tracemalloc:
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
    rss_before = scenarios.current_rss_mib()
    scheduler = scheduler_cls(scenarios.MID, client)
    t_start = time.perf_counter()
    scheduler.start()
    await scheduler.wait_for_initialization()
    result["init_s"] = round(time.perf_counter() - t_start, 4)
    await asyncio.sleep(0.2)
    gc.collect()
    rss_after = scenarios.current_rss_mib()
    result["rss_delta_mib"] = round(rss_after - rss_before, 1)
    result["rss_bytes_per_dispatch"] = round((rss_after - rss_before) * 2**20 / size)
    if use_tracemalloc:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = after.compare_to(before, "lineno")
        retained = sum(stat.size_diff for stat in stats)
        result["traced_bytes_per_dispatch"] = round(retained / size)
        by_kind: dict[str, int] = {}
        for stat in stats:
            kind = kind_of(stat.traceback[0].filename)
            by_kind[kind] = by_kind.get(kind, 0) + stat.size_diff
        result["traced_by_kind_bytes_per_dispatch"] = {
            kind: round(value / size, 1)
            for kind, value in sorted(by_kind.items(), key=lambda kv: -kv[1])
            if abs(value) >= size
        }
        result["traced_top"] = [
            {
                "site": f"{os.path.basename(stat.traceback[0].filename)}:"
                f"{stat.traceback[0].lineno}",
                "kind": kind_of(stat.traceback[0].filename),
                "bytes_per_dispatch": round(stat.size_diff / size, 1),
                "count_per_dispatch": round(stat.count_diff / size, 2),
            }
            for stat in stats[:15]
        ]
    else:
        try:
            kinds = breakdown(scheduler)
            result["reachable_bytes_per_dispatch"] = round(sum(kinds.values()) / size)
            result["reachable_by_kind_bytes_per_dispatch"] = {
                kind: round(value / size, 1)
                for kind, value in sorted(kinds.items(), key=lambda kv: -kv[1])
            }
        except Exception as error:
            result["breakdown_error"] = repr(error)
    await scenarios.stop_scheduler(scheduler)
    return result


# ----------------------------------------------------------------- the parent


def run_child(src: str, size: int, mode: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [sys.executable, __file__, "--child", mode, "--size", str(size)]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--src", action="append", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--child", choices=("rss", "tracemalloc"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(measure(args.size, args.child == "tracemalloc"))
        print(json.dumps(result))
        return 0
    sources = args.src or [str(HERE.parent / "src")]
    runs: dict[str, list[dict[str, Any]]] = {src: [] for src in sources}
    for _ in range(args.repeat):
        for src in sources:
            runs[src].append(run_child(src, args.size, "rss"))
    traced: dict[str, dict[str, Any]] = {}
    if not args.no_tracemalloc:
        for src in sources:
            traced[src] = run_child(src, args.size, "tracemalloc")
    summary: dict[str, Any] = {}
    for src in sources:
        good = [r for r in runs[src] if "error" not in r]
        if not good:
            summary[src] = {"error": runs[src][0].get("error")}
            continue
        summary[src] = {
            "library": good[0]["library"]["file"],
            "init_s_best": min(r["init_s"] for r in good),
            "init_s_all": [r["init_s"] for r in good],
            "rss_bytes_per_dispatch_median": statistics.median(
                r["rss_bytes_per_dispatch"] for r in good
            ),
            "rss_bytes_per_dispatch_all": [r["rss_bytes_per_dispatch"] for r in good],
            "reachable_bytes_per_dispatch": good[0].get("reachable_bytes_per_dispatch"),
            "reachable_by_kind": good[0].get("reachable_by_kind_bytes_per_dispatch"),
            "breakdown_error": good[0].get("breakdown_error"),
            "tracemalloc": traced.get(src),
        }
    print(f"N = {args.size}; runs per source: {args.repeat}")
    for src, row in summary.items():
        print(f"\n== {src}")
        if "error" in row:
            print("  error:", row["error"])
            continue
        print(f"  library: {row['library']}")
        print(
            f"  sync (start -> initialized): best {row['init_s_best']:.3f} s"
            f" (all {row['init_s_all']})"
        )
        print(
            f"  RSS delta per dispatch: median {row['rss_bytes_per_dispatch_median']}"
            f" B (all {row['rss_bytes_per_dispatch_all']})"
        )
        print(
            f"  reachable from held dispatches: {row['reachable_bytes_per_dispatch']}"
            " B per dispatch, by kind:"
        )
        if row["breakdown_error"]:
            print("    error:", row["breakdown_error"])
        for kind, value in (row["reachable_by_kind"] or {}).items():
            print(f"    {value:8.1f}  {kind}")
        trace = row["tracemalloc"]
        if trace and "error" not in trace:
            print(
                f"  tracemalloc retained: {trace['traced_bytes_per_dispatch']} B per"
                " dispatch, by kind:"
            )
            for kind, value in trace["traced_by_kind_bytes_per_dispatch"].items():
                print(f"    {value:8.1f}  {kind}")
            print("  top sites (B per dispatch, objects per dispatch):")
            for site in trace["traced_top"]:
                print(
                    f"    {site['bytes_per_dispatch']:8.1f} "
                    f"{site['count_per_dispatch']:6.2f}  {site['site']}"
                    f" ({site['kind']})"
                )
        elif trace:
            print("  tracemalloc error:", trace["error"])
    text = json.dumps(summary)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
