# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Watch a microgrid's dispatches live: their state, next run and payload.

A `Dispatcher` syncs with the service as an application would; the header shows
its connection status and last sync. On a terminal the view redraws in place;
otherwise each change is printed as one timestamped line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from frequenz.client.dispatch.types import Dispatch as ClientDispatch

from .._dispatch import Dispatch
from .._dispatcher import Dispatcher
from .._status import DispatcherStatus, StateSource
from ._common import (
    CommandError,
    add_connection_arguments,
    fail,
    list_dispatches,
    make_client,
    positive,
    read_key,
)

_MAX_MISSED_CHECK = 1000
"""Occurrences looked at per dispatch to find missed runs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments.

    Args:
        parser: The subcommand's parser.
    """
    add_connection_arguments(parser)
    parser.add_argument("--type", help="only dispatches of this type")
    parser.add_argument(
        "--duration",
        type=positive,
        metavar="SECONDS",
        help="exit after this long (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--refresh",
        type=positive,
        default=1.0,
        metavar="SECONDS",
        help="how often to refresh (default: %(default)g)",
    )


@dataclass(frozen=True)
class Row:
    """One dispatch as shown."""

    dispatch_id: int
    type: str
    state: str
    next_run: str
    payload: str

    def line(self) -> str:
        """Return the row as plain text.

        Returns:
            The line.
        """
        return (
            f"dispatch {self.dispatch_id} {self.type}: {self.state};"
            f" next run {self.next_run}; payload {self.payload}"
        )


class Watch:
    """What the watch knows: the dispatches, the runs seen start, the status."""

    def __init__(self, started: datetime) -> None:
        """Initialize.

        Args:
            started: When the watch started (runs before are not judged).
        """
        self.started = started
        self.seen: dict[int, set[datetime | None]] = {}
        """Per dispatch, the ends of the runs the Dispatcher reported started."""

    def observe(self, dispatch: Dispatch) -> None:
        """Note a running-state event.

        Args:
            dispatch: The event.
        """
        if dispatch.started:
            self.seen.setdefault(int(dispatch.id), set()).add(dispatch.until)

    def row(self, client_dispatch: ClientDispatch, now: datetime) -> Row:
        """Describe a dispatch as of now.

        Args:
            client_dispatch: The dispatch as listed.
            now: The current time.

        Returns:
            Its row.
        """
        dispatch = Dispatch(client_dispatch)
        next_run = dispatch.next_run_after(now)
        missed = self._missed(dispatch, now)
        window = dispatch.window_at(now)
        if window is not None:
            state = (
                "running, no end"
                if window.end is None
                else f"running until {_clock(window.end)}"
            )
        elif not dispatch.active:
            state = "inactive"
        elif missed:
            state = f"missed {missed} run{'s' if missed > 1 else ''}"
        elif next_run is not None:
            state = "waiting"
        else:
            state = "finished"
        return Row(
            int(dispatch.id),
            dispatch.type + (" (dry run)" if dispatch.dry_run else ""),
            state,
            "-" if next_run is None else _clock(next_run),
            _payload(dispatch.payload),
        )

    def _missed(self, dispatch: Dispatch, now: datetime) -> int:
        # A run that began and ended since the watch started without the
        # Dispatcher ever reporting it started.
        if not dispatch.active or dispatch.duration is None:
            return 0
        seen = self.seen.get(int(dispatch.id), set())
        missed = 0
        for index, start in enumerate(dispatch.missed_runs(self.started)):
            end = start + dispatch.duration
            if index >= _MAX_MISSED_CHECK or end > now:
                break
            if end not in seen:
                missed += 1
        return missed


async def run(args: argparse.Namespace) -> int:
    """Watch until `--duration` passed (or Ctrl-C).

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 0, or 1 with a one-line reason on stderr.
    """
    try:
        key = read_key(args)
        # Checked once directly: a wrong key or an unreachable URL is an error
        # here, while the Dispatcher would keep retrying.
        probe = make_client(args, key)
        try:
            await list_dispatches(probe, args)
        finally:
            await probe.disconnect()
        dispatcher = Dispatcher(
            microgrid_id=args.microgrid,
            server_url=args.url,
            key=key,
            call_timeout=timedelta(seconds=args.timeout),
        )
        try:
            async with asyncio.timeout(args.timeout * 2):
                await dispatcher.__aenter__()
        except TimeoutError as error:
            raise CommandError(f"no full sync with {args.url} in time") from error
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.duration):
                    await _watch(dispatcher, args)
        finally:
            await dispatcher.stop()
    except CommandError as error:
        return fail(error)
    except KeyboardInterrupt:
        pass
    return 0


async def _watch(dispatcher: Dispatcher, args: argparse.Namespace) -> None:
    watch = Watch(datetime.now(timezone.utc))
    readers: dict[str, asyncio.Task[None]] = {}
    view = _TerminalView(args) if sys.stdout.isatty() else _PlainView()
    try:
        with view:
            while True:
                try:
                    dispatches = await list_dispatches(dispatcher.client.wrapped, args)
                except CommandError as error:
                    dispatches = None
                    view.problem(str(error))
                if dispatches is not None:
                    for dispatch_type in {d.type for d in dispatches} - set(readers):
                        readers[dispatch_type] = asyncio.create_task(
                            _read(dispatcher, dispatch_type, watch)
                        )
                    await asyncio.sleep(0)  # let new readers take what runs now
                    now = datetime.now(timezone.utc)
                    rows = [watch.row(d, now) for d in sorted(dispatches, key=_id)]
                    view.show(dispatcher.status, rows, now)
                await asyncio.sleep(args.refresh)
    finally:
        for task in readers.values():
            task.cancel()


async def _read(dispatcher: Dispatcher, dispatch_type: str, watch: Watch) -> None:
    async for dispatch in dispatcher.new_running_state_event_receiver(dispatch_type):
        watch.observe(dispatch)


def header(status: DispatcherStatus, now: datetime) -> str:
    """Describe the connection in one line.

    Args:
        status: The dispatcher's status.
        now: The current time.

    Returns:
        The line.
    """
    state = "connected" if status.connected else "DISCONNECTED"
    parts = [f"microgrid {status.microgrid_id}", state]
    if status.last_full_sync is not None:
        ago = (now - status.last_full_sync).total_seconds()
        parts.append(f"last sync {_clock(status.last_full_sync)} ({ago:.0f} s ago)")
    cached = status.cache_synced_at
    if status.source is StateSource.CACHE and cached is not None:
        age = (now - cached).total_seconds()
        parts.append(f"from cache synced {_clock(cached)} ({age:.0f} s old)")
    parts.append(f"{status.dispatches} dispatches")
    running = sum(status.running.values())
    parts.append(f"{running} running")
    if status.resyncs or status.reconnects:
        parts.append(f"{status.resyncs} re-syncs, {status.reconnects} reconnects")
    if status.last_error and not status.connected:
        parts.append(f"last error: {status.last_error}")
    return " | ".join(parts)


class _PlainView:
    """One timestamped line per change, for logs and pipes."""

    def __init__(self) -> None:
        self._header: str | None = None
        self._rows: dict[int, Row] = {}

    def __enter__(self) -> _PlainView:
        return self

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()

    def problem(self, text: str) -> None:
        self._print(datetime.now(timezone.utc), f"problem: {text}")

    def show(self, status: DispatcherStatus, rows: list[Row], now: datetime) -> None:
        # The header's "s ago" and "s old" change every second: compare without.
        line = header(status, now)
        key = header(status, status.last_full_sync or status.cache_synced_at or now)
        if key != self._header:
            self._header = key
            self._print(now, line)
        current = {row.dispatch_id: row for row in rows}
        for dispatch_id, row in current.items():
            if self._rows.get(dispatch_id) != row:
                self._print(now, row.line())
        for dispatch_id in self._rows.keys() - current.keys():
            self._print(now, f"dispatch {dispatch_id}: deleted")
        self._rows = current

    @staticmethod
    def _print(now: datetime, text: str) -> None:
        print(f"{now.isoformat(timespec='seconds')} {text}", flush=True)


class _TerminalView:
    """A table redrawn in place (rich)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._title = f"frequenz-dispatch watch — {args.url}"
        self._live: Any = None
        self._problem: str | None = None

    def __enter__(self) -> _TerminalView:
        try:
            from rich.live import Live
        except ImportError as error:
            raise CommandError(
                "the live view needs rich: pip install 'frequenz-dispatch"
                "[local-service]' (or pipe the output for plain lines)"
            ) from error
        self._live = Live(auto_refresh=False, screen=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    def problem(self, text: str) -> None:
        self._problem = text

    def show(self, status: DispatcherStatus, rows: list[Row], now: datetime) -> None:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self._title, caption=_clock(now), expand=True)
        for column in ("id", "type", "state", "next run", "payload"):
            table.add_column(column)
        for row in rows:
            style = "green" if row.state.startswith("running") else None
            if row.state.startswith("missed"):
                style = "bold red"
            table.add_row(
                str(row.dispatch_id),
                row.type,
                row.state,
                row.next_run,
                row.payload,
                style=style,
            )
        head = Text(header(status, now), style="bold" if status.connected else "red")
        parts: list[Any] = [head, table]
        if self._problem:
            parts.append(Text(self._problem, style="red"))
            self._problem = None
        self._live.update(Group(*parts), refresh=True)


def _clock(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _payload(payload: Any, limit: int = 40) -> str:
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _id(dispatch: ClientDispatch) -> int:
    return int(dispatch.id)
