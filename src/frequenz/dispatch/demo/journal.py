# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""What the demo runs and what it saw: dispatch types, event log, actor states."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from .. import (
    Deleted,
    Dispatch,
    DispatcherStatus,
    DispatchEvent,
    DispatchInfo,
    MergeByType,
    MergeStrategy,
    StateSource,
)

MICROGRID_ID = 1
"""The microgrid the demo's dispatches belong to."""

DEFAULT_DURATION = 62.0
"""Seconds the demo runs by default: the whole timeline at speed 1."""

TYPES: dict[str, MergeStrategy | None] = {
    "BATTERY_CHARGE": MergeByType(),
    "EV_CHARGING": None,
    "HEAT_PUMP_BOOST": None,
}
"""The managed dispatch types and their merge strategies."""


QUIET_LOGGERS = ("frequenz", "grpc")
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
    """`setup`, `action`, `service`, `status`, `lifecycle`, `running`, `actor`,
    `log` (the library's warnings) or `error`."""

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
class Journal:
    """Everything the demo saw, and the counts for the final summary."""

    started_at: float
    """The `time.monotonic()` when the demo started (asyncio's clock too)."""

    echo: TextIO | None
    """Where to print each entry as a plain line; None when a live view shows it."""

    entries: list[Entry] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    dispatches: dict[int, Dispatch] = field(default_factory=dict)
    running: dict[int, Dispatch] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    actors: dict[str, ActorState] = field(default_factory=dict)
    created: Counter[int] = field(default_factory=Counter)
    """Created events per dispatch id: more than one would be a duplicate."""
    actor_starts: Counter[tuple[int, str]] = field(default_factory=Counter)
    """Actor starts per Dispatcher number and dispatch name (of the first
    dispatch, for merged actors)."""
    service_up: bool = False
    """Whether the local service is serving."""
    dispatcher_number: int = 0
    """Which Dispatcher runs: 1, then 2 after a restart."""
    status: DispatcherStatus | None = None
    """The running Dispatcher's latest status."""
    marks: dict[str, Counter[str]] = field(default_factory=dict)
    """Copies of `counts` taken at named moments, e.g. `service back`."""

    def elapsed(self) -> float:
        """Return the seconds since the demo started.

        Returns:
            The seconds.
        """
        # Not the event loop's time(): the live view also asks from rich's
        # refresh thread, where there is no running loop. Both clocks are
        # time.monotonic() for the standard event loop.
        return time.monotonic() - self.started_at

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
        if name == "Created":
            self.created[int(dispatch.id)] += 1
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
        if status == "started":
            name = str(info.options.get("name", label))
            self.actor_starts[self.dispatcher_number, name] += 1
        self.log("actor", f"{label} {status}: {config}", count=f"actor {status}")

    def mark(self, name: str) -> None:
        """Keep a copy of the counts as of now, to show what came after.

        Args:
            name: The moment's name.
        """
        self.marks[name] = Counter(self.counts)

    def since(self, name: str) -> Counter[str]:
        """Return the counts since a marked moment.

        Args:
            name: The moment's name (see `mark`).

        Returns:
            The counts since then; empty if the moment was never marked.
        """
        if name not in self.marks:
            return Counter()
        since = Counter(self.counts)
        since.subtract(self.marks[name])
        return since

    def status_change(self, status: DispatcherStatus) -> None:
        """Record a status of the running Dispatcher; log when its state changes.

        Only a change of the connection or of the source of the schedule is
        logged: the other fields change with every event.

        Args:
            status: The snapshot.
        """
        previous, self.status = self.status, status
        if previous is not None and (previous.connected, previous.source) == (
            status.connected,
            status.source,
        ):
            return
        name = f"dispatcher {self.dispatcher_number}"
        source = describe_source(status)
        if status.connected:
            self.log(
                "status",
                f"{name}: connected, {source}"
                f" ({status.dispatches} dispatches, resyncs={status.resyncs},"
                f" reconnects={status.reconnects})",
                count="status connected",
            )
            return
        error = "" if status.last_error is None else f"; {status.last_error}"
        self.log(
            "status",
            f"{name}: disconnected, {source} ({status.dispatches} dispatches){error}",
            count="status disconnected",
        )


def status_line(journal: Journal) -> str:
    """Return the connection status, as the live view's header shows it.

    Args:
        journal: What the demo saw.

    Returns:
        E.g. `service up · dispatcher 1 connected, schedule from the service`.
    """
    service = "service up" if journal.service_up else "service DOWN"
    status = journal.status
    if status is None:
        return service
    connection = "connected" if status.connected else "DISCONNECTED"
    return (
        f"{service} · dispatcher {journal.dispatcher_number} {connection},"
        f" {describe_source(status)}"
        f" · resyncs={status.resyncs} reconnects={status.reconnects}"
    )


def describe_source(status: DispatcherStatus) -> str:
    """Tell where a Dispatcher's schedule comes from.

    Args:
        status: Its status.

    Returns:
        E.g. `schedule from the cache`.
    """
    if status.source is StateSource.NONE:
        return "nothing held yet"
    return f"schedule from the {status.source.value}"
