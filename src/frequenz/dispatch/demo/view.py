# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Showing the demo: a live rich view on a terminal, a summary at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, TextIO

from .. import Dispatch
from .journal import Journal, format_payload, status_line


class LiveView:
    """The rich live view: dispatches, actors and the latest events."""

    _STYLES: ClassVar[dict[str, str]] = {
        "setup": "dim",
        "action": "yellow",
        "lifecycle": "cyan",
        "running": "green",
        "actor": "magenta",
        "service": "bold yellow",
        "status": "bold blue",
        "log": "dim yellow",
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
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        journal = self._journal
        dispatches = Table(
            title=(
                f"frequenz-dispatch demo — t={journal.elapsed():4.1f}s of "
                f"{self._duration:.0f} s (Ctrl-C to stop)\n{status_line(journal)}"
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


@contextlib.contextmanager
def live_view(journal: Journal, duration: float, out: TextIO) -> Iterator[None]:
    """Show the live view while the block runs (rich is imported only here).

    Args:
        journal: What to show.
        duration: The demo's planned length, for the title.
        out: The terminal.

    Yields:
        Nothing; the view refreshes itself from rich's thread.
    """
    from rich.console import Console
    from rich.live import Live

    view = LiveView(journal, duration)
    with Live(
        get_renderable=view.render,
        console=Console(file=out),
        refresh_per_second=8,
    ):
        yield


def outage_line(journal: Journal) -> str:
    """Summarize the outage scene: what came after the service was back.

    Args:
        journal: What the demo saw.

    Returns:
        One line.
    """
    counts = journal.counts
    since = journal.since("service back")
    twice = sum(1 for n in journal.created.values() if n > 1)
    started_twice = sum(1 for n in journal.actor_starts.values() if n > 1)
    status = journal.status
    reconnected = (
        status is not None
        and journal.dispatcher_number > 1
        and status.last_full_sync is not None
    )
    return (
        f"service stopped={counts['service stopped']}"
        f" started again={counts['service started']};"
        f" dispatcher restarts={counts['action restart']};"
        f" re-synced after the outage={'yes' if reconnected else 'no'};"
        f" since the service is back: created={since['lifecycle created']}"
        f" updated={since['lifecycle updated']}"
        f" actors started={since['actor started']}"
        f" reconfigured={since['actor reconfigured']};"
        f" duplicate Created={twice} duplicate actor starts={started_twice}"
    )


def print_summary(journal: Journal, out: TextIO) -> None:
    """Print the counts of what the demo saw.

    Args:
        journal: What the demo saw.
        out: Where to print.
    """
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
    if "service back" in journal.marks:
        lines.append(f"outage:               {outage_line(journal)}")
    if counts["error"]:
        lines.append(f"errors: {counts['error']} (see above)")
    for line in lines:
        print(line, file=out, flush=True)
