# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Running the demo: service, Dispatcher, managed actors, script and view.

The demo starts a `LocalDispatchService` in this process (on a temporary
database), opens a `Dispatcher` on it (with an offline cache file), lets it
manage three dispatch types with a small SDK actor, and plays a timeline of
dispatches:

| when (s)  | what                                                              |
| --------- | ----------------------------------------------------------------- |
| before    | `HEAT_PUMP_BOOST`: every minute for 20 s, first run 40 s ago       |
| 3 - 11    | `BATTERY_CHARGE` "charge-A" (one-shot)                             |
| 7 - 17    | `BATTERY_CHARGE` "charge-B", overlapping: with `MergeByType` the   |
|           | running actor is reconfigured instead of a second one started,    |
|           | and it stops only when the last of the two ends                   |
| 5 - 35    | `EV_CHARGING` "ev-fleet", its payload updated at 13 s              |
| 9 - 39    | `EV_CHARGING` "ev-visitor", deleted while running at 24 s          |
| 20 - 40   | the next run of `HEAT_PUMP_BOOST`                                  |
| 33 - 60   | the outage scene (see `outage`): the service stops, the Dispatcher |
|           | restarts from its cache, charge-C runs on time offline, the        |
|           | service comes back with a change and nothing is doubled            |

Lifecycle events, running-state events and actor starts, reconfigurations and
stops are shown as they happen: as a live table and event log when stdout is a
terminal, as plain timestamped lines otherwise. `--speed` compresses the
timeline (the recurrence stays minutely: its next run is placed accordingly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from .. import MergeStrategy
from ..local_service.signals import stop_on_signals
from .journal import DEFAULT_DURATION, QUIET_LOGGERS, TYPES, Journal
from .outage import play_outage
from .script import Cue, Timeline, play_script, seed_recurring
from .stage import Stage, journal_logs
from .view import live_view, print_summary


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    duration: float = DEFAULT_DURATION
    """Seconds to run before stopping by itself."""

    speed: float = 1.0
    """How much faster than the default timeline to play."""

    live: bool | None = None
    """Live view (True), plain lines (False), or live only on a terminal (None)."""

    show_logs: bool = False
    """Keep the library's INFO logs (otherwise only warnings are shown)."""


@contextlib.contextmanager
def _quiet_logs(show: bool) -> Iterator[None]:
    if show:
        yield
        return
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def run_demo(
    options: DemoOptions, stop: asyncio.Event | None = None, out: TextIO | None = None
) -> Journal:
    """Run the demo until its duration is over or `stop` is set.

    Args:
        options: How to run it.
        stop: Ends the demo early when set (Ctrl-C).
        out: Where plain lines and the summary go; stdout by default.

    Returns:
        The journal of everything seen.
    """
    out = sys.stdout if out is None else out
    live = out.isatty() if options.live is None else options.live
    stop = asyncio.Event() if stop is None else stop
    timeline = Timeline(options.speed)
    journal = Journal(time.monotonic(), None if live else out)
    logs = (
        contextlib.nullcontext()
        if options.show_logs
        else journal_logs(journal, QUIET_LOGGERS)
    )

    with tempfile.TemporaryDirectory(prefix="dispatch-demo-") as directory, logs:
        stage = Stage(Path(directory), journal)
        seed_recurring(stage.database, timeline, datetime.now(timezone.utc))
        journal.log(
            "setup",
            "stored before the start: HEAT_PUMP_BOOST boost, every minute for"
            f" {timeline.duration(20).total_seconds():.0f} s since"
            f" {60 - math.ceil(timeline.offset(20))} s ago",
        )
        async with stage:
            journal.log("setup", f"local Dispatch API service at {stage.service.url}")
            managed = ", ".join(
                f"{name} ({_merging(strategy)})" for name, strategy in TYPES.items()
            )
            journal.log(
                "setup",
                f"dispatcher 1 synced, caching to {stage.cache_file.name};"
                f" managing {managed}",
            )
            await _play(
                stage=stage,
                journal=journal,
                timeline=timeline,
                options=options,
                stop=stop,
                live=live,
                out=out,
            )
    print_summary(journal, out)
    return journal


async def _play(
    *,
    stage: Stage,
    journal: Journal,
    timeline: Timeline,
    options: DemoOptions,
    stop: asyncio.Event,
    live: bool,
    out: TextIO,
) -> None:
    async def scenes() -> None:
        cue = Cue.now(timeline)
        await play_script(stage.dispatcher.client, journal, cue)
        await play_outage(stage, journal, cue)

    script = asyncio.create_task(scenes())
    script.add_done_callback(lambda done: _report_failure(done, journal))
    view = (
        live_view(journal, options.duration, out) if live else contextlib.nullcontext()
    )
    with view:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.duration - journal.elapsed()):
                    await stop.wait()
            if stop.is_set():
                journal.log("setup", "interrupted")
        finally:
            script.cancel()
            await asyncio.gather(script, return_exceptions=True)
            journal.log("setup", "stopping the managed actors and the Dispatcher")
            await stage.close_dispatcher()


def _merging(strategy: MergeStrategy | None) -> str:
    return "one actor per dispatch" if strategy is None else type(strategy).__name__


def _report_failure(script: asyncio.Task[None], journal: Journal) -> None:
    if not script.cancelled() and (error := script.exception()) is not None:
        journal.log("error", f"the demo's script failed: {error!r}", count="error")


def run_demo_command(options: DemoOptions) -> int:
    """Run the demo as `frequenz-dispatch demo` does, until done or Ctrl-C.

    Args:
        options: How to run it.

    Returns:
        The exit status: 1 if the demo's script failed, else 0.
    """

    async def main() -> int:
        with stop_on_signals() as stop:
            journal = await run_demo(options, stop)
        return 1 if journal.counts["error"] else 0

    # KeyboardInterrupt comes only without signal handlers (Windows), when
    # everything was stopped anyway.
    with _quiet_logs(options.show_logs), contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 0
