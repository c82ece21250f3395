# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz-dispatch demo`: the library at work, live, on a local service.

The demo starts a `LocalDispatchService` in this process (on a temporary
database), opens a `Dispatcher` on it, lets it manage three dispatch types with
a small SDK actor, and plays a timeline of dispatches:

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

Lifecycle events, running-state events and actor starts, reconfigurations and
stops are shown as they happen: as a live table and event log when stdout is a
terminal, as plain timestamped lines otherwise. `--speed` compresses the
timeline (the recurrence stays minutely: its next run is placed accordingly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, TextIO

# pylint: disable=no-name-in-module
from frequenz.api.dispatch.v1 import dispatch_pb2
from frequenz.channels import Receiver
from frequenz.sdk.actor import Actor
from google.protobuf.struct_pb2 import Struct
from typing_extensions import override

from .. import (
    Deleted,
    Dispatch,
    Dispatcher,
    DispatchEvent,
    DispatchInfo,
    MergeByType,
    MergeStrategy,
)
from ._convert import micros_to_timestamp, wall_clock_micros
from ._service import LocalDispatchService
from ._storage import DispatchStorage

# pylint: enable=no-name-in-module

MICROGRID_ID = 1
"""The microgrid the demo's dispatches belong to."""

DEFAULT_DURATION = 45.0
"""Seconds the demo runs by default: the whole timeline at speed 1."""

TYPES: dict[str, MergeStrategy | None] = {
    "BATTERY_CHARGE": MergeByType(),
    "EV_CHARGING": None,
    "HEAT_PUMP_BOOST": None,
}
"""The managed dispatch types and their merge strategies."""


_QUIET_LOGGERS = ("frequenz", "grpc")
"""Loggers whose INFO messages would drown the demo's own output."""


def _fmt_value(value: Any) -> str:
    # Payloads travel as protobuf Structs, where every number is a float.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_payload(payload: dict[str, Any]) -> str:
    """Format a payload compactly: `ev-fleet max_current_a=32`.

    Args:
        payload: The payload; its `name`, if any, comes first and bare.

    Returns:
        The text.
    """
    parts = [str(payload["name"])] if "name" in payload else []
    parts.extend(
        f"{key}={_fmt_value(value)}"
        for key, value in sorted(payload.items())
        if key != "name"
    )
    return " ".join(parts)


@dataclass(frozen=True)
class Entry:
    """One line of the demo's event log."""

    elapsed: float
    """Seconds since the demo started."""

    kind: str
    """`setup`, `action`, `lifecycle`, `running`, `actor` or `error`."""

    text: str
    """What happened."""

    def plain(self) -> str:
        """Return the entry as one plain line.

        Returns:
            The line.
        """
        return f"[+{self.elapsed:6.2f}s] {self.kind:<9} {self.text}"


@dataclass
class ActorState:
    """What the demo knows about one actor."""

    label: str
    status: str
    config: str


@dataclass
class Journal:  # pylint: disable=too-many-instance-attributes
    """Everything the demo saw, and the counts for the final summary."""

    started_at: float
    """The event loop time when the demo started."""

    echo: TextIO | None
    """Where to print each entry as a plain line; None when a live view shows it."""

    entries: list[Entry] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    dispatches: dict[int, Dispatch] = field(default_factory=dict)
    running: dict[int, Dispatch] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    actors: dict[str, ActorState] = field(default_factory=dict)

    def elapsed(self) -> float:
        """Return the seconds since the demo started.

        Returns:
            The seconds.
        """
        return asyncio.get_running_loop().time() - self.started_at

    def at(self, moment: datetime) -> str:
        """Format a wall-clock time as demo time, like the log's timestamps.

        Args:
            moment: The time.

        Returns:
            The text, e.g. `t=12.0s` (negative before the demo started).
        """
        delta = (moment - datetime.now(timezone.utc)).total_seconds()
        return f"t={self.elapsed() + delta:.1f}s"

    def log(self, kind: str, text: str, count: str | None = None) -> None:
        """Record an entry (and print it in plain mode).

        Args:
            kind: The entry's kind.
            text: What happened.
            count: The counter to increment for the summary, if any.
        """
        entry = Entry(self.elapsed(), kind, text)
        self.entries.append(entry)
        if count is not None:
            self.counts[count] += 1
        if self.echo is not None:
            print(entry.plain(), file=self.echo, flush=True)

    def lifecycle(self, event: DispatchEvent) -> None:
        """Record a lifecycle event.

        Args:
            event: The event.
        """
        dispatch = event.dispatch
        name = type(event).__name__
        self.dispatches[int(dispatch.id)] = dispatch
        if isinstance(event, Deleted):
            self.deleted.add(int(dispatch.id))
        self.log(
            "lifecycle",
            f"{name:<7} #{int(dispatch.id)} {dispatch.type}"
            f" {format_payload(dispatch.payload)}",
            count=f"lifecycle {name.lower()}",
        )

    def running_state(self, dispatch: Dispatch) -> None:
        """Record a running-state event.

        Args:
            dispatch: The dispatch whose running state changed.
        """
        dispatch_id = int(dispatch.id)
        label = f"#{dispatch_id} {dispatch.type} {format_payload(dispatch.payload)}"
        if dispatch.started:
            what = "reconfigured" if dispatch_id in self.running else "started"
            self.running[dispatch_id] = dispatch
            until = "forever" if dispatch.until is None else self.at(dispatch.until)
            self.log(
                "running", f"{label}: {what}, until {until}", count=f"running {what}"
            )
            return
        self.running.pop(dispatch_id, None)
        why = "deleted" if dispatch.deleted else "window ended"
        others = [
            format_payload(other.payload)
            for other in self.running.values()
            if other.type == dispatch.type
        ]
        if others and TYPES.get(dispatch.type) is not None:
            why += (
                f"; {', '.join(others)} still runs, so with"
                f" {type(TYPES[dispatch.type]).__name__} its actor keeps running"
            )
        self.log("running", f"{label}: stopped ({why})", count="running stopped")

    def actor(self, label: str, status: str, info: DispatchInfo) -> None:
        """Record what an actor did.

        Args:
            label: The actor's name.
            status: `started`, `reconfigured` or `stopped`.
            info: The configuration it runs with.
        """
        config = format_payload(info.options)
        shown = {"started": "running", "reconfigured": "running, reconfigured"}
        self.actors[label] = ActorState(label, shown.get(status, status), config)
        self.log("actor", f"{label} {status}: {config}", count=f"actor {status}")


class DemoActor(Actor):
    """A small actor that only tells what it is doing."""

    def __init__(
        self,
        label: str,
        info: DispatchInfo,
        updates: Receiver[DispatchInfo],
        journal: Journal,
    ) -> None:
        """Create the actor.

        Args:
            label: Its name.
            info: The configuration of the dispatch it was created for.
            updates: Where new configurations arrive.
            journal: Where to tell what it does.
        """
        super().__init__(name=label)
        self._label = label
        self._info = info
        self._updates = updates
        self._journal = journal

    @override
    async def _run(self) -> None:
        self._journal.actor(self._label, "started", self._info)
        try:
            async for info in self._updates:
                self._info = info
                self._journal.actor(self._label, "reconfigured", info)
        except asyncio.CancelledError:
            self._journal.actor(self._label, "stopped", self._info)
            raise


def actor_factory(
    dispatch_type: str, journal: Journal
) -> Callable[[DispatchInfo, Receiver[DispatchInfo]], Awaitable[Actor]]:
    """Return a factory of `DemoActor`s for one dispatch type.

    Args:
        dispatch_type: The type the actors are for.
        journal: Where they tell what they do.

    Returns:
        The factory, as `Dispatcher.start_managing` wants it.
    """
    made = 0

    async def make(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
        nonlocal made
        made += 1
        return DemoActor(
            f"{dispatch_type.lower()}-actor-{made}", info, updates, journal
        )

    return make


@dataclass(frozen=True)
class Timeline:
    """The demo's schedule, in seconds from its start, compressed by `speed`."""

    speed: float

    def offset(self, seconds: float) -> float:
        """Return when something planned at `seconds` (at speed 1) happens.

        Args:
            seconds: The time at speed 1.

        Returns:
            The time at this speed; at least 1 s, so that a start time given
                at the beginning is still in the future when it arrives.
        """
        return max(1.0, seconds / self.speed)

    def duration(self, seconds: float) -> timedelta:
        """Return a duration planned as `seconds` at speed 1.

        Args:
            seconds: The duration at speed 1.

        Returns:
            The duration at this speed, in whole seconds (as the API keeps them).
        """
        return timedelta(seconds=max(1, round(seconds / self.speed)))


def seed_recurring(database: Path, timeline: Timeline, origin: datetime) -> None:
    """Store a dispatch that has been recurring since before the demo.

    It runs every minute for 20 s (at speed 1) and its first run was 40 s before
    the demo, so its next run starts 20 s into the demo. The API accepts no
    start time in the past, so it is written to the database directly, before
    the service starts.

    Args:
        database: The service's database file.
        timeline: The demo's timeline.
        origin: When the demo's timeline starts.
    """
    next_run = origin + timedelta(seconds=math.ceil(timeline.offset(20)))
    first_run = next_run - timedelta(minutes=1)
    payload = Struct()
    payload.update({"name": "boost", "target_celsius": 55})
    data = dispatch_pb2.DispatchData(
        type="HEAT_PUMP_BOOST",
        start_time=micros_to_timestamp(int(first_run.timestamp()) * 1_000_000),
        duration=int(timeline.duration(20).total_seconds()),
        target=dispatch_pb2.TargetComponents(
            component_ids=dispatch_pb2.TargetComponents.IdSet(ids=[17])
        ),
        is_active=True,
        is_dry_run=False,
        payload=payload,
        recurrence=dispatch_pb2.RecurrenceRule(
            freq=dispatch_pb2.RecurrenceRule.FREQUENCY_MINUTELY, interval=1
        ),
    )
    storage = DispatchStorage(database)
    try:
        storage.insert(MICROGRID_ID, data, wall_clock_micros())
    finally:
        storage.close()


async def _consume(receiver: Receiver[Any], handle: Callable[[Any], None]) -> None:
    async for message in receiver:
        handle(message)


async def play_script(
    dispatcher: Dispatcher, journal: Journal, timeline: Timeline
) -> None:
    """Create, update and delete the demo's dispatches at their times.

    Args:
        dispatcher: The dispatcher whose client is used.
        journal: Where to tell what is done.
        timeline: The demo's timeline.
    """
    client = dispatcher.client
    origin = datetime.now(timezone.utc)
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def create(
        name: str, dispatch_type: str, start: float, duration: float, **payload: Any
    ) -> int:
        start_time = origin + timedelta(seconds=timeline.offset(start))
        length = timeline.duration(duration)
        journal.log(
            "action",
            f"create {dispatch_type} {name}: starts at {journal.at(start_time)},"
            f" runs {length.total_seconds():.0f} s",
            count="action create",
        )
        created = await client.create(
            microgrid_id=MICROGRID_ID,
            type=dispatch_type,
            start_time=start_time,
            duration=length,
            target=[1, 2] if dispatch_type == "BATTERY_CHARGE" else [5],
            payload={"name": name, **payload},
        )
        return int(created.id)

    async def at(seconds: float) -> None:
        await asyncio.sleep(max(0.0, began + timeline.offset(seconds) - loop.time()))

    await create("charge-A", "BATTERY_CHARGE", 3, 8, power_kw=50)
    await create("charge-B", "BATTERY_CHARGE", 7, 10, power_kw=80)
    fleet = await create("ev-fleet", "EV_CHARGING", 5, 30, max_current_a=16)
    visitor = await create("ev-visitor", "EV_CHARGING", 9, 30, max_current_a=10)

    await at(13)
    journal.log(
        "action", f"update #{fleet} ev-fleet: max_current_a 16 -> 32", "action update"
    )
    await client.update(
        microgrid_id=MICROGRID_ID,
        dispatch_id=fleet,
        new_fields={"payload": {"name": "ev-fleet", "max_current_a": 32}},
    )

    await at(24)
    journal.log(
        "action", f"delete #{visitor} ev-visitor while it runs", "action delete"
    )
    await client.delete(microgrid_id=MICROGRID_ID, dispatch_id=visitor)


class _LiveView:
    """The rich live view: dispatches, actors and the latest events."""

    _STYLES: ClassVar[dict[str, str]] = {
        "setup": "dim",
        "action": "yellow",
        "lifecycle": "cyan",
        "running": "green",
        "actor": "magenta",
        "error": "bold red",
    }

    def __init__(self, journal: Journal, duration: float, log_lines: int = 14) -> None:
        self._journal = journal
        self._duration = duration
        self._log_lines = log_lines

    def render(self) -> Any:
        """Return the current view.

        Returns:
            A rich renderable.
        """
        # pylint: disable=import-outside-toplevel
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        journal = self._journal
        dispatches = Table(
            title=(
                f"frequenz-dispatch demo — t={journal.elapsed():4.1f}s of "
                f"{self._duration:.0f} s (Ctrl-C to stop)"
            ),
            expand=True,
        )
        for column in ("id", "type", "state", "until / next run", "payload"):
            dispatches.add_column(column)
        for dispatch_id, dispatch in sorted(journal.dispatches.items()):
            state, when = self._state(dispatch_id, dispatch)
            style = {"running": "bold green", "deleted": "red"}.get(state, "")
            dispatches.add_row(
                f"#{dispatch_id}",
                dispatch.type,
                Text(state, style=style),
                when,
                format_payload(dispatch.payload),
            )

        actors = Table(title="actors", expand=True)
        for column in ("actor", "status", "configuration"):
            actors.add_column(column)
        for actor in journal.actors.values():
            style = "bold magenta" if actor.status != "stopped" else "dim"
            actors.add_row(actor.label, Text(actor.status, style=style), actor.config)

        log = Text(no_wrap=True, overflow="ellipsis")
        for entry in journal.entries[-self._log_lines :]:
            log.append(f"+{entry.elapsed:6.2f}s ", style="dim")
            log.append(f"{entry.kind:<9} ", style=self._STYLES.get(entry.kind, ""))
            log.append(entry.text + "\n")
        log.rstrip()
        return Group(dispatches, actors, Panel(log, title="events"))

    def _state(self, dispatch_id: int, dispatch: Dispatch) -> tuple[str, str]:
        journal = self._journal
        if dispatch_id in journal.deleted:
            return "deleted", ""
        running = journal.running.get(dispatch_id)
        if running is not None:
            until = running.until
            return "running", "forever" if until is None else journal.at(until)
        next_run = dispatch.next_run
        if next_run is None:
            return "finished", ""
        return "waiting", journal.at(next_run)


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
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
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
    journal = Journal(asyncio.get_running_loop().time(), None if live else out)

    with tempfile.TemporaryDirectory(prefix="dispatch-demo-") as directory:
        database = Path(directory) / "demo.sqlite3"
        seed_recurring(database, timeline, datetime.now(timezone.utc))
        service = LocalDispatchService(database=database, grace=0.1)
        async with service:
            journal.log("setup", f"local Dispatch API service at {service.url}")
            journal.log(
                "setup",
                "stored before the start: HEAT_PUMP_BOOST boost, every minute for"
                f" {timeline.duration(20).total_seconds():.0f} s since"
                f" {60 - math.ceil(timeline.offset(20))} s ago",
            )
            dispatcher = Dispatcher(
                microgrid_id=MICROGRID_ID, server_url=service.url, key=service.key
            )
            # Made before the first sync, so that it is reported too.
            receivers: list[tuple[Receiver[Any], Callable[[Any], None]]] = []
            for dispatch_type in TYPES:
                receivers.append(
                    (
                        dispatcher.new_lifecycle_events_receiver(dispatch_type),
                        journal.lifecycle,
                    )
                )
            consumers = [
                asyncio.create_task(_consume(receiver, handle))
                for receiver, handle in receivers
            ]
            try:
                async with dispatcher:
                    await _run_synced(
                        dispatcher=dispatcher,
                        journal=journal,
                        timeline=timeline,
                        options=options,
                        stop=stop,
                        live=live,
                        out=out,
                    )
            finally:
                for consumer in consumers:
                    consumer.cancel()
                await asyncio.gather(*consumers, return_exceptions=True)
    _print_summary(journal, out)
    return journal


async def _run_synced(  # pylint: disable=too-many-arguments
    *,
    dispatcher: Dispatcher,
    journal: Journal,
    timeline: Timeline,
    options: DemoOptions,
    stop: asyncio.Event,
    live: bool,
    out: TextIO,
) -> None:
    consumers: list[asyncio.Task[None]] = []
    for dispatch_type, strategy in TYPES.items():
        consumers.append(
            asyncio.create_task(
                _consume(
                    dispatcher.new_running_state_event_receiver(dispatch_type),
                    journal.running_state,
                )
            )
        )
        await dispatcher.start_managing(
            dispatch_type,
            actor_factory=actor_factory(dispatch_type, journal),
            merge_strategy=strategy,
            retry_interval=timedelta(seconds=5),
        )
    managed = ", ".join(
        f"{name} ({'one actor per dispatch' if s is None else type(s).__name__})"
        for name, s in TYPES.items()
    )
    journal.log("setup", f"Dispatcher synced; managing {managed}")

    script = asyncio.create_task(play_script(dispatcher, journal, timeline))
    script.add_done_callback(lambda done: _report_failure(done, journal))
    view = _live(journal, options.duration, out) if live else contextlib.nullcontext()
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
            for dispatch_type in TYPES:
                await dispatcher.stop_managing(dispatch_type)
            for consumer in consumers:
                consumer.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)


def _report_failure(script: asyncio.Task[None], journal: Journal) -> None:
    if not script.cancelled() and (error := script.exception()) is not None:
        journal.log("error", f"the demo's script failed: {error!r}", count="error")


@contextlib.contextmanager
def _live(journal: Journal, duration: float, out: TextIO) -> Iterator[None]:
    # pylint: disable=import-outside-toplevel
    from rich.console import Console
    from rich.live import Live

    view = _LiveView(journal, duration)
    with Live(
        get_renderable=view.render,
        console=Console(file=out),
        refresh_per_second=8,
    ):
        yield


def _print_summary(journal: Journal, out: TextIO) -> None:
    counts = journal.counts
    started = counts["actor started"]
    stopped = counts["actor stopped"]
    lines = [
        f"==== summary after {journal.elapsed():.1f} s ====",
        "lifecycle events:     "
        f"created={counts['lifecycle created']} updated={counts['lifecycle updated']} "
        f"deleted={counts['lifecycle deleted']}",
        "running-state events: "
        f"started={counts['running started']} "
        f"reconfigured={counts['running reconfigured']} "
        f"stopped={counts['running stopped']}",
        f"actors:               started={started} "
        f"reconfigured={counts['actor reconfigured']} stopped={stopped} "
        f"(still running: {started - stopped})",
    ]
    if counts["error"]:
        lines.append(f"errors: {counts['error']} (see above)")
    for line in lines:
        print(line, file=out, flush=True)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _run_demo_command(args: argparse.Namespace) -> int:
    """Handle `demo`."""
    options = DemoOptions(
        duration=args.duration,
        speed=args.speed,
        live=args.live,
        show_logs=args.show_logs,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
        try:
            for signum in signals:
                loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:
            signals = ()  # Windows: Ctrl-C raises KeyboardInterrupt instead.
        try:
            journal = await run_demo(options, stop)
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
        return 1 if journal.counts["error"] else 0

    # KeyboardInterrupt comes only without signal handlers (Windows), when
    # everything was stopped anyway.
    with _quiet_logs(options.show_logs), contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 0


def add_demo_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `demo`.

    Args:
        subparsers: The subcommand registry of the `frequenz-dispatch` parser.
    """
    parser = subparsers.add_parser(
        "demo",
        help="watch the library handle a timeline of dispatches, live",
        description=(
            "Start a local Dispatch API service in this process, open a Dispatcher "
            "on it and play a timeline of dispatches (one-shot, recurring, "
            "overlapping, updated and deleted while running), showing lifecycle "
            "events, running-state events and the managed actors as they happen. "
            "Ends by itself after --duration seconds, or on Ctrl-C."
        ),
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help="stop after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="FACTOR",
        help="play the timeline this much faster, e.g. 3 with --duration 15 "
        "(default: %(default)s)",
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--live",
        dest="live",
        action="store_const",
        const=True,
        default=None,
        help="live table view (default when stdout is a terminal)",
    )
    view.add_argument(
        "--plain",
        dest="live",
        action="store_const",
        const=False,
        help="plain timestamped lines (default when stdout is not a terminal)",
    )
    parser.add_argument(
        "--show-logs",
        action="store_true",
        help="also show the library's INFO logs (on stderr)",
    )
    parser.set_defaults(handler=_run_demo_command)
