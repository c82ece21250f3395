# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz-dispatch demo` runs, shows what happens, and ends cleanly.

The demo runs as a subprocess with stdout on a pipe, so it prints plain lines.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time

DEMO = (sys.executable, "-m", "frequenz.dispatch.cli", "demo")
LINE = re.compile(r"^\[\+\s*(?P<elapsed>\d+\.\d\d)s\] (?P<kind>\w+)\s+(?P<text>.*)$")


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *DEMO,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _entries(lines: list[str]) -> list[tuple[str, str]]:
    """The (kind, text) of every event line, in order."""
    return [
        (match["kind"], match["text"])
        for line in lines
        if (match := LINE.match(line)) is not None
    ]


def _index(entries: list[tuple[str, str]], kind: str, pattern: str) -> int:
    for index, (entry_kind, text) in enumerate(entries):
        if entry_kind == kind and re.search(pattern, text):
            return index
    raise AssertionError(f"no {kind} line matching {pattern!r} in {entries}")


async def test_demo_plays_its_timeline() -> None:
    began = time.monotonic()
    process = await _start("--duration", "15", "--speed", "3")
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    elapsed = time.monotonic() - began
    output = stdout.decode()
    assert process.returncode == 0, (output, stderr.decode())
    assert 15 <= elapsed < 45, elapsed

    lines = output.splitlines()
    entries = _entries(lines)
    summary = lines[len(entries) :]
    # Not a terminal: nothing but plain timestamped lines, then the summary.
    assert entries and all(LINE.match(line) for line in lines[: len(entries)])
    assert summary[0].startswith("==== summary after ")
    assert "created=5 updated=1 deleted=1" in summary[1]
    assert re.search(
        r"started=4 reconfigured=2 stopped=4 \(still running: 0\)", summary[3]
    )

    actor_lines = [text for kind, text in entries if kind == "actor"]
    # Starts: one battery actor for both overlapping dispatches (MergeByType),
    # one per EV dispatch, one for the recurring heat pump run.
    started = [t for t in actor_lines if " started: " in t]
    assert sorted(t.split(" ")[0] for t in started) == [
        "battery_charge-actor-1",
        "ev_charging-actor-1",
        "ev_charging-actor-2",
        "heat_pump_boost-actor-1",
    ]
    # Reconfigurations: the merged battery actor takes over charge-B; the EV
    # actor gets the updated payload of the running dispatch.
    assert "battery_charge-actor-1 reconfigured: charge-B power_kw=80" in actor_lines
    update = _index(entries, "action", r"^update #\d+ ev-fleet")
    reconfigured = _index(entries, "actor", r"reconfigured: ev-fleet max_current_a=32$")
    assert update < reconfigured

    # A stop from a deletion: the deleted dispatch's running-state stop, then
    # its actor stops (long before the demo ends and stops every actor).
    delete = _index(entries, "action", r"^delete #(\d+) ev-visitor")
    deleted_id = re.findall(r"#(\d+)", entries[delete][1])[0]
    stop_event = _index(entries, "running", rf"^#{deleted_id} .*: stopped \(deleted\)$")
    actor_stop = _index(entries, "actor", r" stopped: ev-visitor ")
    shutdown = _index(entries, "setup", r"^stopping the managed actors")
    assert delete < stop_event < actor_stop < shutdown
    assert _index(entries, "lifecycle", rf"^Deleted #{deleted_id} ") > delete

    # The recurring dispatch stored before the start ran its next window.
    assert _index(entries, "running", r"HEAT_PUMP_BOOST .*: started") < shutdown
    assert _index(entries, "running", r"HEAT_PUMP_BOOST .*: stopped \(window ended\)")


async def test_demo_stops_cleanly_on_ctrl_c() -> None:
    process = await _start("--duration", "60", "--speed", "3")
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while " started: " not in (line := (await process.stdout.readline()).decode()):
            assert line, "the demo ended before any actor started"
            lines.append(line)
        process.send_signal(signal.SIGINT)
        stdout, _ = await process.communicate()
    lines.extend(stdout.decode().splitlines())

    assert process.returncode == 0
    entries = _entries(lines)
    assert _index(entries, "setup", "^interrupted$") < _index(
        entries, "setup", "^stopping the managed actors"
    )
    assert "(still running: 0)" in lines[-1]


async def test_the_live_view_renders_to_the_end() -> None:
    # The live view refreshes from rich's own thread: a failure there only
    # shows as a traceback on stderr while the demo itself carries on.
    process = await _start("--duration", "6", "--speed", "4", "--live")
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    errors = stderr.decode()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert "Exception in thread" not in errors
    screen = stdout.decode()
    assert "frequenz-dispatch demo" in screen
    assert "BATTERY_CHARGE" in screen
    assert "summary" in screen
