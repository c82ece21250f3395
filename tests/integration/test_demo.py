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
    process = await _start("--duration", "22", "--speed", "3")
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    elapsed = time.monotonic() - began
    output = stdout.decode()
    assert process.returncode == 0, (output, stderr.decode())
    assert 22 <= elapsed < 52, elapsed

    lines = output.splitlines()
    entries = _entries(lines)
    summary = lines[len(entries) :]
    # Not a terminal: nothing but plain timestamped lines, then the summary.
    assert entries and all(LINE.match(line) for line in lines[: len(entries)])
    assert summary[0].startswith("==== summary after ")
    # The first part's 5 dispatches and charge-C; the outage's update; no
    # Created twice although a second Dispatcher started from the cache.
    assert "created=6 updated=2 deleted=1" in summary[1]
    assert re.search(
        r"started=5 reconfigured=3 stopped=5 \(still running: 0\)", summary[3]
    )
    assert summary[4].startswith("outage:")
    assert "re-synced after the outage=yes" in summary[4]
    assert "created=0 updated=1 actors started=0 reconfigured=1" in summary[4]
    assert "duplicate Created=0 duplicate actor starts=0" in summary[4]
    _check_outage(entries)

    actor_lines = [text for kind, text in entries if kind == "actor"]
    # Starts: one battery actor for both overlapping dispatches (MergeByType),
    # one per EV dispatch, one for the recurring heat pump run.
    started = [t for t in actor_lines if " started: " in t]
    assert sorted(t.split(" ")[0] for t in started) == [
        "battery_charge-actor-1",
        "battery_charge-actor-2",
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


def _check_outage(entries: list[tuple[str, str]]) -> None:
    """The outage scene, from the plain lines."""
    created = _index(entries, "lifecycle", r"^Created #(\d+) BATTERY_CHARGE charge-C ")
    charge_c = re.findall(r"#(\d+)", entries[created][1])[0]
    stopped = _index(entries, "service", r"^service stopped: port \d+ refuses")
    offline = _index(entries, "status", r"^dispatcher 1: disconnected, schedule from")
    restart = _index(entries, "action", r"^restart the Dispatcher")
    from_cache = _index(
        entries, "status", r"^dispatcher 2: disconnected, schedule from the cache"
    )
    started = _index(entries, "running", rf"^#{charge_c} .*power_kw=40: started")
    actor_started = _index(entries, "actor", r" started: charge-C power_kw=40$")
    change = _index(entries, "action", rf"another endpoint .* update #{charge_c} ")
    back = _index(entries, "service", r"^service back on port \d+, same database$")
    resynced = _index(entries, "status", r"^dispatcher 2: connected, schedule from")
    updated = _index(entries, "lifecycle", rf"^Updated #{charge_c} .*power_kw=60$")
    reconfigured = _index(entries, "actor", r" reconfigured: charge-C power_kw=60$")
    actor_stopped = _index(entries, "actor", r" stopped: charge-C power_kw=60$")
    shutdown = _index(entries, "setup", r"^stopping the managed actors")
    assert created < stopped < restart < from_cache < back < resynced < shutdown
    stopping = _index(entries, "service", r"^stopping the Dispatch API service")
    assert stopping < offline < restart
    # The window of charge-C starts and stops on time from the cache, through
    # its actor, while the service is down; the change reaches it on re-sync.
    assert from_cache < started < back and started < actor_started < back
    assert restart < change < back < updated < actor_stopped < shutdown
    assert back < reconfigured < actor_stopped
    # The heat pump's window ended on time while the service was down.
    heat_stop = _index(entries, "running", r"HEAT_PUMP_BOOST .*: stopped \(window")
    assert stopped < heat_stop < restart

    # Nothing doubled: one Created per dispatch over the whole run, and after
    # the service is back no Created and no actor start at all.
    ids = [
        re.findall(r"#(\d+)", text)[0]
        for kind, text in entries
        if kind == "lifecycle" and text.startswith("Created ")
    ]
    assert len(ids) == len(set(ids)) == 6
    after = entries[back:]
    assert not [t for k, t in after if k == "lifecycle" and t.startswith("Created")]
    assert not [t for k, t in after if k == "actor" and " started: " in t]
    assert not [t for k, t in after if k == "running" and ": started," in t]
    tally = _index(entries, "setup", r"^since the service is back: ")
    assert (
        "created=0 updated=1 deleted=0; actors started=0 reconfigured=1 stopped=1;"
        " Created twice: none; actor started twice by a Dispatcher: none"
    ) in entries[tally][1]


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
