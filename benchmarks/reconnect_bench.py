#!/usr/bin/env python3
# License: MIT
"""Reconnect latency of a `Dispatcher` against the local service over real gRPC.

The local service (`LocalDispatchService`, on a file database) runs in a child
process on a fixed loopback port; the `Dispatcher` runs in this process. The
benchmark kills the child, waits for an outage of a given length, starts a new
child on the same port and database, and measures the delay from the moment the
new child accepts connections (it prints `time.time()` right after its server
started) to the moment the Dispatcher's scheduler reconciled a new full list
(`DispatchScheduler.resyncs` increments; polled every 2 ms). It also measures
"start before service": a fresh Dispatcher started while nothing listens, the
service started some seconds later, delay from accepting to the first sync.

Outages alternate between SIGKILL (a crash: connections reset) and SIGTERM (a
graceful stop: streams end with UNAVAILABLE), in a shuffled (seeded) order of
lengths. Also counted: the log lines the library wrote per outage (WARNING and
above), to see whether a long outage floods the log.

Usage:

    PYTHONPATH=src .venv/bin/python benchmarks/reconnect_bench.py \
        [--lengths 1x6,2x3,5x3,10x3,30x2,60x2,150x1] [--start-delays 1,5,20] \
        [--seed 1] [--json out.json]

`--lengths` is `SECONDSxCOUNT,...`. The default is 20 outages, about 6.5 min of
outage in all. Prints p50/p95/max per outage length, and one JSON object as the
last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

KEY = "reconnect-bench-key-0123456789"
MICROGRID_ID = 1
POLL_S = 0.002
DEFAULT_LENGTHS = "1x6,2x3,5x3,10x3,30x2,60x2,150x1"
RESYNC_LIMIT_S = 300.0
"""Give up waiting for a re-sync after this long (reported as a timeout)."""


# ----------------------------------------------------------------------- the child


async def _serve(port: int, database: str) -> None:
    from frequenz.dispatch.local_service import (
        LocalDispatchService,
    )

    service = LocalDispatchService(database=database, key=KEY, port=port, grace=0.2)
    await service.start()
    print(f"READY {time.time():.6f}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await service.stop()


# ---------------------------------------------------------------------- the parent


class Child:
    """One run of the service in a child process."""

    def __init__(self, port: int, database: Path) -> None:
        self.port = port
        self.database = database
        self.process: asyncio.subprocess.Process | None = None
        self.ready_at = 0.0

    async def start(self) -> float:
        """Start the child; return the wall time at which it accepted connections."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            str(self.port),
            str(self.database),
            stdout=asyncio.subprocess.PIPE,
            env=os.environ.copy(),
        )
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
            if not line:
                raise RuntimeError("the service child exited before it was ready")
            if line.startswith(b"READY "):
                self.ready_at = float(line.split()[1])
                return self.ready_at

    async def stop(self, how: str) -> None:
        """Stop the child with SIGKILL (`kill`) or SIGTERM (`term`)."""
        process = self.process
        if process is None:
            return
        process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        self.process = None


class LogCount(logging.Handler):
    """Counts the library's log lines of WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = [*self.last, record.getMessage()[:160]][-3:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def parse_lengths(text: str) -> list[float]:
    lengths: list[float] = []
    for part in text.split(","):
        seconds, _, count = part.partition("x")
        lengths.extend([float(seconds)] * int(count or 1))
    return lengths


async def wait_resync(scheduler: Any, before: int, limit: float) -> float | None:
    """Return the wall time at which `resyncs` exceeded `before`, None on timeout."""
    deadline = time.monotonic() + limit
    while scheduler.resyncs <= before:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(POLL_S)
    return time.time()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values), 3),
    }


def library_info() -> dict[str, Any]:
    import frequenz.dispatch

    return {"file": frequenz.dispatch.__file__}


@contextmanager
def counting_logs() -> Iterator[LogCount]:
    handler = LogCount()
    logger = logging.getLogger("frequenz.dispatch")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def seed_database(url: str, count: int) -> None:
    """Create `count` dispatches (far in the future) so a sync has work to do."""
    from datetime import datetime, timezone

    from frequenz.client.common.microgrid import (
        MicrogridId,
    )
    from frequenz.client.dispatch import (
        DispatchApiClient,
    )
    from frequenz.client.dispatch.types import (
        TargetIds,
    )

    client = DispatchApiClient(server_url=url, auth_key=KEY)
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    for i in range(count):
        await client.create(
            MicrogridId(MICROGRID_ID),
            "BENCH",
            start + timedelta(minutes=i),
            timedelta(minutes=1),
            TargetIds(1),
            payload={"i": i},
        )
    await client.disconnect()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from frequenz.dispatch import Dispatcher

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    logging.getLogger("frequenz.dispatch").setLevel(logging.WARNING)
    lengths = parse_lengths(args.lengths)
    random.Random(args.seed).shuffle(lengths)
    delays = [float(d) for d in args.start_delays.split(",") if d]
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="reconnect-bench-"))
    child = Child(port, tmp / "dispatches.sqlite3")
    url = f"grpc://127.0.0.1:{port}?ssl=false"
    result: dict[str, Any] = {
        "library": library_info(),
        "lengths": lengths,
        "start_delays": delays,
        "outages": [],
        "start_before_service": [],
    }

    # Start before the service: a fresh Dispatcher each time, nothing listening.
    for delay in delays:
        dispatcher = Dispatcher(microgrid_id=MICROGRID_ID, server_url=url, key=KEY)
        scheduler = dispatcher._bg_service
        with counting_logs() as logs:
            dispatcher.start()
            await asyncio.sleep(delay)
            accepted = await child.start()
            synced = await wait_resync(scheduler, 0, RESYNC_LIMIT_S)
        latency = None if synced is None else synced - accepted
        result["start_before_service"].append(
            {"delay_s": delay, "latency_s": latency, "log_lines": logs.count}
        )
        print(
            f"start-before-service {delay:6.1f} s: synced "
            f"{'timeout' if latency is None else f'{latency:.3f} s'} after accept,"
            f" {logs.count} log lines",
            flush=True,
        )
        await dispatcher.stop()
        await child.stop("term")
        await asyncio.sleep(0.2)

    # Outages of a running Dispatcher.
    await child.start()
    await seed_database(url, args.dispatches)
    dispatcher = Dispatcher(microgrid_id=MICROGRID_ID, server_url=url, key=KEY)
    scheduler = dispatcher._bg_service
    dispatcher.start()
    await asyncio.wait_for(scheduler.wait_for_initialization(), 60)
    for index, length in enumerate(lengths):
        how = "kill" if index % 2 == 0 else "term"
        before = scheduler.resyncs
        with counting_logs() as logs:
            await child.stop(how)
            await asyncio.sleep(length)
            accepted = await child.start()
            synced = await wait_resync(scheduler, before, RESYNC_LIMIT_S)
        latency = None if synced is None else synced - accepted
        result["outages"].append(
            {
                "length_s": length,
                "how": how,
                "latency_s": latency,
                "log_lines": logs.count,
            }
        )
        print(
            f"outage {index + 1:2d}/{len(lengths)} {length:6.1f} s ({how}): re-synced "
            f"{'timeout' if latency is None else f'{latency:.3f} s'} after accept,"
            f" {logs.count} log lines",
            flush=True,
        )
    await dispatcher.stop()
    await child.stop("term")

    table: dict[str, Any] = {}
    for length in sorted(set(lengths)):
        rows = [o for o in result["outages"] if o["length_s"] == length]
        values = [o["latency_s"] for o in rows if o["latency_s"] is not None]
        table[f"{length:g}"] = {
            **stats(values),
            "timeouts": sum(1 for o in rows if o["latency_s"] is None),
            "max_log_lines": max(o["log_lines"] for o in rows),
        }
    every = [o["latency_s"] for o in result["outages"] if o["latency_s"] is not None]
    starts = [
        s["latency_s"]
        for s in result["start_before_service"]
        if s["latency_s"] is not None
    ]
    result["by_length"] = table
    result["all_outages"] = stats(every)
    result["start_before_service_stats"] = stats(starts)

    print()
    print(f"library: {result['library']['file']}")
    print(f"{'outage s':>9} {'n':>3} {'p50 s':>8} {'p95 s':>8} {'max s':>8} logs")
    for label, row in table.items():
        if row["n"]:
            print(
                f"{label:>9} {row['n']:>3} {row['p50']:>8.3f} {row['p95']:>8.3f}"
                f" {row['max']:>8.3f} {row['max_log_lines']:>4}"
                + (f"  ({row['timeouts']} timeouts)" if row["timeouts"] else "")
            )
        else:
            print(f"{label:>9}   0 all {row['timeouts']} timed out")
    for name, row in (
        ("all", result["all_outages"]),
        ("start", result["start_before_service_stats"]),
    ):
        if row["n"]:
            print(
                f"{name:>9} {row['n']:>3} {row['p50']:>8.3f} {row['p95']:>8.3f}"
                f" {row['max']:>8.3f}"
            )
    return result


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(_serve(int(sys.argv[2]), sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS)
    parser.add_argument("--start-delays", default="1,5,20")
    parser.add_argument("--dispatches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
