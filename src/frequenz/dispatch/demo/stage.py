# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The demo's moving parts: the service, the Dispatcher on it, and what watches it.

The outage scene stops the service, restarts the Dispatcher while the service is
down, makes a change through another endpoint of the same database, and brings
the service back; `Stage` does each of these for the script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from frequenz.channels import Receiver
from frequenz.client.dispatch import DispatchApiClient

from .. import Dispatcher
from ..local_service import LocalDispatchService
from .journal import MICROGRID_ID, TYPES, Journal
from .script import actor_factory, consume

_CALL_TIMEOUT = timedelta(seconds=5)
"""Calls of the demo's clients: the service is local, a slow one is a failure."""


class Stage:
    """The local service, the `Dispatcher` on it (restartable), and its watchers."""

    def __init__(self, directory: Path, journal: Journal) -> None:
        """Set the stage up in a directory; nothing runs until entered.

        Args:
            directory: Where the service's database and the cache file go.
            journal: Where everything is told.
        """
        self.database = directory / "demo.sqlite3"
        """The service's database file."""
        self.cache_file = directory / "dispatch-cache.sqlite3"
        """The Dispatcher's offline cache."""
        self.service = LocalDispatchService(database=self.database, grace=0.1)
        """The Dispatch API service the Dispatcher talks to."""
        self._journal = journal
        # One factory per type for the whole demo, so that actor names stay
        # unique across a restart of the Dispatcher.
        self._factories = {name: actor_factory(name, journal) for name in TYPES}
        self._dispatcher: Dispatcher | None = None
        self._consumers: list[asyncio.Task[None]] = []

    @property
    def dispatcher(self) -> Dispatcher:
        """The running Dispatcher.

        Raises:
            RuntimeError: If none runs.
        """
        if self._dispatcher is None:
            raise RuntimeError("no Dispatcher runs")
        return self._dispatcher

    async def __aenter__(self) -> Self:
        """Start the service and the first Dispatcher (synced with the service).

        Returns:
            The stage.
        """
        await self.service.start()
        self._journal.service_up = True
        try:
            await self.open_dispatcher()
        except BaseException:
            await self.service.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the Dispatcher (and its actors) and the service."""
        try:
            await self.close_dispatcher()
        finally:
            await self.service.stop()
            self._journal.service_up = False

    async def open_dispatcher(self) -> Dispatcher:
        """Start a Dispatcher with the cache file, managing the demo's types.

        The first one waits for the service; a later one (a restart) starts
        from the cache when the service is down.

        Returns:
            The running Dispatcher.
        """
        journal = self._journal
        journal.dispatcher_number += 1
        journal.status = None
        # The new Dispatcher tells afresh what runs.
        journal.running.clear()
        dispatcher = Dispatcher(
            microgrid_id=MICROGRID_ID,
            server_url=self.service.url,
            key=self.service.key,
            call_timeout=_CALL_TIMEOUT,
            cache_file=self.cache_file,
        )
        self._dispatcher = dispatcher
        watchers: list[tuple[Receiver[Any], Callable[[Any], None]]] = [
            (dispatcher.new_status_receiver(), journal.status_change)
        ]
        lifecycle = [
            (dispatcher.new_lifecycle_events_receiver(name), journal.lifecycle)
            for name in TYPES
        ]
        # The first Dispatcher's receivers are made before its first sync, so
        # that the dispatches stored before the demo are reported too. After a
        # restart they are made once the cache is loaded: the demo knows those
        # dispatches already, so any Created from then on is a new dispatch (or
        # a duplicate, which the summary would show).
        if journal.dispatcher_number == 1:
            watchers.extend(lifecycle)
        self._watch(watchers)
        await dispatcher.__aenter__()
        try:
            if journal.dispatcher_number > 1:
                for receiver, _ in lifecycle:
                    receiver.close()
                self._watch(
                    (dispatcher.new_lifecycle_events_receiver(name), journal.lifecycle)
                    for name in TYPES
                )
            for name, strategy in TYPES.items():
                self._watch(
                    [
                        (
                            dispatcher.new_running_state_event_receiver(name),
                            journal.running_state,
                        )
                    ]
                )
                await dispatcher.start_managing(
                    name,
                    actor_factory=self._factories[name],
                    merge_strategy=strategy,
                    retry_interval=timedelta(seconds=5),
                )
        except BaseException:
            await self.close_dispatcher()
            raise
        return dispatcher

    async def close_dispatcher(self) -> None:
        """Stop the managed actors and the running Dispatcher, if any."""
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is None:
            return
        try:
            for name in TYPES:
                if dispatcher.is_managed(name):
                    await dispatcher.stop_managing(name)
        finally:
            await dispatcher.__aexit__(None, None, None)
            consumers, self._consumers = self._consumers, []
            for consumer in consumers:
                consumer.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)

    async def restart_dispatcher(self) -> Dispatcher:
        """Stop the Dispatcher and start a new one, as a process restart would.

        Returns:
            The new Dispatcher.
        """
        await self.close_dispatcher()
        return await self.open_dispatcher()

    async def stop_service(self) -> None:
        """Stop the service: it no longer listens on its port."""
        await self.service.stop()
        self._journal.service_up = False

    async def start_service(self) -> None:
        """Start the service again: same database, same port."""
        await self.service.start()
        self._journal.service_up = True

    async def is_listening(self) -> bool:
        """Try a TCP connection to the service's port.

        Returns:
            Whether something accepts connections there.
        """
        try:
            _, writer = await asyncio.open_connection(
                self.service.host, self.service.port
            )
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    @contextlib.asynccontextmanager
    async def other_endpoint(self) -> AsyncIterator[tuple[str, DispatchApiClient]]:
        """Serve the same database on another port, while the service is down.

        An operator's edit made while the Dispatcher cannot reach its service:
        the change is in the database when the service comes back.

        Yields:
            The other endpoint's URL and a client on it.
        """
        other = LocalDispatchService(
            database=self.database, key=self.service.key, grace=0.1
        )
        await other.start()
        client = DispatchApiClient(
            server_url=other.url, auth_key=other.key, call_timeout=_CALL_TIMEOUT
        )
        try:
            yield other.url, client
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
            await other.stop()

    def _watch(
        self, watchers: Iterable[tuple[Receiver[Any], Callable[[Any], None]]]
    ) -> None:
        for receiver, handle in watchers:
            self._consumers.append(asyncio.create_task(consume(receiver, handle)))


@contextlib.contextmanager
def journal_logs(journal: Journal, names: tuple[str, ...]) -> Iterator[None]:
    """Show the library's warnings in the journal instead of on stderr.

    In the outage they tell of the lost stream and the retries; on stderr they
    would break the live view.

    Args:
        journal: Where they go, as `log` entries.
        names: The loggers.

    Yields:
        Nothing; the handler is removed on exit.
    """

    class _ToJournal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage().replace("\n", " ")
            journal.log("log", f"{record.levelname}: {_shorten(text)}")

    handler = _ToJournal(logging.WARNING)
    loggers = [logging.getLogger(name) for name in names]
    propagate = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, previous in zip(loggers, propagate, strict=True):
            logger.removeHandler(handler)
            logger.propagate = previous


def _shorten(text: str, limit: int = 150) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
