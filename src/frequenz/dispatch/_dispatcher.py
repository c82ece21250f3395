# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The `Dispatcher`: the library's entry point."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Generator
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient as _ApiClientClass
from frequenz.sdk.actor import BackgroundService
from typing_extensions import override

from ._actor_dispatcher import ActorDispatcher, ActorFactory
from ._bg_service import DispatchScheduler
from ._client import DispatchClient, to_microgrid_id
from ._client import TunedDispatchApiClient as DispatchApiClient
from ._clock import Clock, wall_clock
from ._deprecation import warn_deprecated
from ._event import DispatchEvent
from ._merge_strategies import MergeStrategy
from ._running_state import RunningStateReceiver
from ._status import DispatcherStatus

_logger = logging.getLogger(__name__)


class _Done:
    """An already-completed awaitable.

    `start_managing` does its work when called; returning this lets callers both
    `await` it, as documented, and call it without `await`, as older examples do,
    without a "coroutine was never awaited" warning.
    """

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover  # makes this function a generator


class Dispatcher(BackgroundService):
    """A highlevel interface for the dispatch API.

    This class provides a highlevel interface to the dispatch API. It provides
    receivers for various events and management of actors based on dispatches.

    The receivers shortly explained:

    * [Lifecycle events receiver][frequenz.dispatch.Dispatcher.new_lifecycle_events_receiver]:
        Receives an event whenever a dispatch is created, updated or deleted.
    * [Running status change
        receiver][frequenz.dispatch.Dispatcher.new_running_state_event_receiver]:
        Receives an event whenever the running status of a dispatch changes.
        The running status of a dispatch can change due to a variety of reasons,
        such as but not limited to the dispatch being started, stopped, modified
        or deleted or reaching its scheduled start or end time.

        Any change that could potentially require the consumer to start, stop or
        reconfigure itself will cause a message to be sent.

    No receiver ever drops an event: a slow consumer gets every start and stop,
    with consecutive reconfigurations of one dispatch merged into the latest.

    Example: Managing an actor
        ```python
        import os
        from frequenz.dispatch import Dispatcher, MergeByType
        from unittest.mock import MagicMock

        async def create_actor(dispatch: DispatchInfo, receiver: Receiver[DispatchInfo]) -> Actor:
            return MagicMock(dispatch=dispatch, receiver=receiver)

        async def run():
            url = os.getenv("DISPATCH_API_URL", "grpc://fz-0004.frequenz.io:50051")
            key  = os.getenv("DISPATCH_API_KEY", "some-key")

            microgrid_id = 1

            async with Dispatcher(
                microgrid_id=microgrid_id,
                server_url=url,
                key=key
            ) as dispatcher:
                await dispatcher.start_managing(
                    dispatch_type="DISPATCH_TYPE",
                    actor_factory=create_actor,
                    merge_strategy=MergeByType(),
                )

                await dispatcher
        ```

    Example: Processing running state change dispatches
        ```python
        import os
        from frequenz.dispatch import Dispatcher
        from unittest.mock import MagicMock

        async def run():
            url = os.getenv("DISPATCH_API_URL", "grpc://fz-0004.frequenz.io:50051")
            key  = os.getenv("DISPATCH_API_KEY", "some-key")

            microgrid_id = 1

            async with Dispatcher(
                microgrid_id=microgrid_id,
                server_url=url,
                key=key
            ) as dispatcher:
                actor = MagicMock() # replace with your actor

                rs_receiver = dispatcher.new_running_state_event_receiver("DISPATCH_TYPE")

                async for dispatch in rs_receiver:
                    if dispatch.started:
                        print(f"Executing dispatch {dispatch.id}, due on {dispatch.start_time}")
                        if actor.is_running:
                            actor.reconfigure(
                                components=dispatch.target,
                                run_parameters=dispatch.payload, # custom actor parameters
                                dry_run=dispatch.dry_run,
                                until=dispatch.until,
                            )  # this will reconfigure the actor
                        else:
                            # this will start a new actor with the given components
                            # and run it for the duration of the dispatch
                            actor.start(
                                components=dispatch.target,
                                run_parameters=dispatch.payload, # custom actor parameters
                                dry_run=dispatch.dry_run,
                                until=dispatch.until,
                            )
                    else:
                        actor.stop()  # this will stop the actor
        ```

    Example: Getting notification about dispatch lifecycle events
        ```python
        import os
        from typing import assert_never

        from frequenz.dispatch import Created, Deleted, Dispatcher, Updated

        async def run():
            url = os.getenv("DISPATCH_API_URL", "grpc://fz-0004.frequenz.io:50051")
            key  = os.getenv("DISPATCH_API_KEY", "some-key")

            microgrid_id = 1

            async with Dispatcher(
                microgrid_id=microgrid_id,
                server_url=url,
                key=key,
            ) as dispatcher:
                events_receiver = dispatcher.new_lifecycle_events_receiver("DISPATCH_TYPE")

                async for event in events_receiver:
                    match event:
                        case Created(dispatch):
                            print(f"A dispatch was created: {dispatch}")
                        case Deleted(dispatch):
                            print(f"A dispatch was deleted: {dispatch}")
                        case Updated(dispatch):
                            print(f"A dispatch was updated: {dispatch}")
                        case _ as unhandled:
                            assert_never(unhandled)
        ```

    Example: Creating a new dispatch and then modifying it.
        Note that this uses the lower-level client to create and update the dispatch.

        ```python
        import os
        from datetime import datetime, timedelta, timezone

        from frequenz.client.common.microgrid.electrical_components import (
            ElectricalComponentCategory as ComponentCategory,
        )

        from frequenz.dispatch import Dispatcher

        async def run():
            url = os.getenv("DISPATCH_API_URL", "grpc://fz-0004.frequenz.io:50051")
            key  = os.getenv("DISPATCH_API_KEY", "some-key")

            microgrid_id = 1

            async with Dispatcher(
                microgrid_id=microgrid_id,
                server_url=url,
                key=key,
            ) as dispatcher:
                # Create a new dispatch
                new_dispatch = await dispatcher.client.create(
                    microgrid_id=microgrid_id,
                    type="ECHO_FREQUENCY",  # replace with your own type
                    start_time=datetime.now(tz=timezone.utc) + timedelta(minutes=10),
                    duration=timedelta(minutes=5),
                    target=ComponentCategory.INVERTER,
                    payload={"font": "Times New Roman"},  # Arbitrary payload data
                )

                # Modify the dispatch
                await dispatcher.client.update(
                    microgrid_id=microgrid_id,
                    dispatch_id=new_dispatch.id,
                    new_fields={"duration": timedelta(minutes=10)}
                )

                # Validate the modification
                modified_dispatch = await dispatcher.client.get(
                    microgrid_id=microgrid_id, dispatch_id=new_dispatch.id
                )
                assert modified_dispatch.duration == timedelta(minutes=10)
        ```
    """

    def __init__(
        self,
        *,
        microgrid_id: MicrogridId | int,
        server_url: str | None = None,
        key: str | None = None,
        auth_key: str | None = None,
        sign_secret: str | None = None,
        call_timeout: timedelta = timedelta(seconds=60),
        stream_timeout: timedelta = timedelta(minutes=5),
        clock: Clock | None = None,
        cache_file: str | os.PathLike[str] | None = None,
        require_service: bool = False,
        cache_max_age: timedelta | None = None,
        client: _ApiClientClass | None = None,
    ) -> None:
        """Initialize the dispatcher.

        Args:
            microgrid_id: The microgrid id (a plain int is accepted).
            server_url: The URL of the dispatch service.
            key: The key to access the service.
            auth_key: The same as `key`, under the client's name for it.
            sign_secret: The secret to sign requests with, if the service wants it.
            call_timeout: Timeout for each unary call to the service.
            stream_timeout: Timeout for the client's own `stream()` helper (the
                dispatcher's sync keeps its stream open without a deadline).
            clock: Where the scheduler reads the current time; None for the
                system's UTC wall clock. Tests pass
                `frequenz.dispatch.testing.FakeClock.now`.
            cache_file: A file to keep the microgrid's dispatches in. At start-up
                a usable cache is loaded at once and the schedule runs from it
                (`async with` returns) while the service is unreachable; runs
                that closed while no process ran are missed runs. After every
                sync and change it is written, on a worker thread of its own.
                None keeps no cache.
            require_service: With a cache, still wait for the first sync with
                the service before `async with` / `wait_for_initialization()`
                return.
            cache_max_age: Refuse a cache whose last full sync is older than
                this; None accepts any age.
            client: A ready client to use instead of building one, for example
                the client's `FakeClient` in tests (see
                `frequenz.dispatch.testing.fake_dispatcher`). With it, the
                connection settings (`server_url`, `key`, `auth_key`,
                `sign_secret`) must not be given, and the timeouts are the
                client's own.

        Raises:
            TypeError: If neither a client nor a server URL and key are given, or
                an argument has the wrong type.
            ValueError: If `key` and `auth_key` disagree, or a client is given
                together with connection settings.
        """
        super().__init__()
        self._microgrid_id = to_microgrid_id(microgrid_id)
        if client is not None:
            # The class itself, not the module-level name a test may patch.
            if not isinstance(client, _ApiClientClass):
                raise TypeError(
                    "client must be a frequenz.client.dispatch.DispatchApiClient "
                    f"(or its FakeClient), got {client!r}"
                )
            given = [
                name
                for name, value in (
                    ("server_url", server_url),
                    ("key", key),
                    ("auth_key", auth_key),
                    ("sign_secret", sign_secret),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"pass either client or connection settings, not both "
                    f"(got client and {', '.join(given)})"
                )
        else:
            client = _build_client(
                server_url=server_url,
                key=key,
                auth_key=auth_key,
                sign_secret=sign_secret,
                call_timeout=call_timeout,
                stream_timeout=stream_timeout,
            )
        self._client = DispatchClient(client)
        # The engine gets the raw client: the lenient wrapper is for users only.
        self._bg_service = DispatchScheduler(
            self._microgrid_id,
            self._client.wrapped,
            clock=wall_clock if clock is None else clock,
            cache_file=cache_file,
            require_service=require_service,
            cache_max_age=cache_max_age,
        )
        self._actor_dispatchers: dict[str, ActorDispatcher] = {}
        self._all_unmanaged = asyncio.Event()
        self._all_unmanaged.set()

    @override
    def start(self) -> None:
        """Start the local dispatch service."""
        self._bg_service.start()

    @property
    @override
    def is_running(self) -> bool:
        """Whether the local dispatch service is running."""
        return self._bg_service.is_running

    @override
    async def wait(self) -> None:
        """Wait until every managed dispatch type is stopped.

        With types managed (`start_managing`), returns once each was stopped with
        `stop_managing` (or the dispatcher was stopped). With none, waits for the
        background service to finish, like any `BackgroundService`.

        Raises:
            BaseExceptionGroup: If the background service failed meanwhile.
        """
        if self._all_unmanaged.is_set():
            await self._bg_service.wait()
            return
        unmanaged = asyncio.ensure_future(self._all_unmanaged.wait())
        service = asyncio.ensure_future(self._bg_service.wait())
        try:
            await asyncio.wait(
                {unmanaged, service}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            unmanaged.cancel()
            service.cancel()
        if service.done() and not service.cancelled():
            service.result()

    @override
    def cancel(self, msg: str | None = None) -> None:
        """Stop the local dispatch service.

        Args:
            msg: The message to be passed to the tasks being cancelled.
        """
        self._bg_service.cancel(msg)
        for instance in self._actor_dispatchers.values():
            instance.cancel(msg)

    @override
    async def stop(self, msg: str | None = None) -> None:
        """Stop every managed actor, then the background service.

        Args:
            msg: The message to be passed to the tasks being cancelled.
        """
        for dispatch_type in list(self._actor_dispatchers):
            await self.stop_managing(dispatch_type)
        await self._bg_service.stop(msg)

    async def wait_for_initialization(self, timeout: timedelta | None = None) -> None:
        """Wait until the background service is initialized.

        Args:
            timeout: Give up after this long; None waits until the service is
                reachable (failures are logged and retried meanwhile).
        """
        await self._bg_service.wait_for_initialization(timeout)

    def is_managed(self, dispatch_type: str) -> bool:
        """Check if the dispatcher is managing actors for a given dispatch type.

        Args:
            dispatch_type: The type of the dispatch to check.

        Returns:
            True if the dispatcher is managing actors for the given dispatch type.
        """
        return dispatch_type in self._actor_dispatchers

    def start_managing(
        self,
        dispatch_type: str,
        *,
        actor_factory: ActorFactory,
        merge_strategy: MergeStrategy | None = None,
        retry_interval: timedelta = timedelta(seconds=60),
    ) -> _Done:
        """Manage actors for a given dispatch type.

        Creates and manages an [`ActorDispatcher`][frequenz.dispatch.ActorDispatcher]
        for the given type that will start, stop and reconfigure actors based on
        received dispatches. A second call for a type already managed is ignored.

        You can await the `Dispatcher` instance to block until all types
        registered with `start_managing()` are stopped using `stop_managing()`.

        "Merging" means that when multiple dispatches are active at the same time,
        the intervals are merged into one. This also decides how instances are
        mapped from dispatches to actors:

        * [`MergeByType`][frequenz.dispatch.MergeByType] — All dispatches map to
          one single instance identified by the dispatch type.
        * [`MergeByTypeTarget`][frequenz.dispatch.MergeByTypeTarget] — A dispatch
          maps to an instance identified by the dispatch type and target.
        * `None` — No merging, each dispatch maps to a separate instance.

        The work is done when this is called; the result may be awaited (as
        documented) or not.

        Args:
            dispatch_type: The type of the dispatch to manage.
            actor_factory: The factory to create actors.
            merge_strategy: The strategy to merge running intervals.
            retry_interval: Retry interval for when actor creation fails.

        Returns:
            An awaitable that is already complete.
        """
        if not isinstance(dispatch_type, str):
            raise TypeError(f"dispatch_type must be a str, got {dispatch_type!r}")
        if dispatch_type in self._actor_dispatchers:
            _logger.debug("Ignoring duplicate start_managing for %r", dispatch_type)
            return _Done()
        receiver = self.new_running_state_event_receiver(
            dispatch_type, merge_strategy=merge_strategy
        )
        dispatcher = ActorDispatcher(
            actor_factory=actor_factory,
            running_status_receiver=receiver,
            dispatch_identity=(
                None if merge_strategy is None else merge_strategy.identity
            ),
            retry_interval=retry_interval,
        )
        self._actor_dispatchers[dispatch_type] = dispatcher
        self._all_unmanaged.clear()
        dispatcher.start()
        return _Done()

    async def stop_managing(self, dispatch_type: str) -> None:
        """Stop managing actors for a given dispatch type.

        Stops the type's `ActorDispatcher` and every actor it started.

        Args:
            dispatch_type: The type of the dispatch to stop managing.
        """
        dispatcher = self._actor_dispatchers.pop(dispatch_type, None)
        try:
            if dispatcher is not None:
                await dispatcher.stop()
        finally:
            if not self._actor_dispatchers:
                self._all_unmanaged.set()

    @property
    def status(self) -> DispatcherStatus:
        """The dispatcher's health now, as an immutable snapshot.

        Whether it is connected, where the dispatches it holds came from
        (`StateSource.SERVICE`, `CACHE`, or `NONE` before the first sync), the
        last full sync and the last error with their instants, the re-syncs,
        reconnects and failed attempts so far, the dispatches held, those running
        now and the runs missed so far (per type), and the next scheduled change.
        See [`DispatcherStatus`][frequenz.dispatch.DispatcherStatus].
        """
        return self._bg_service.status

    def new_status_receiver(self) -> Receiver[DispatcherStatus]:
        """Return a receiver of status changes, for health reporting.

        The receiver first gets the current status, then a new snapshot whenever
        something in it changed. Snapshots never pile up: changes are published
        at most once per event-loop iteration and a receiver keeps only the
        latest one not yet consumed, so a consumer that reads once a minute gets
        the newest status, not a minute of history.

        This is the thing to wire into a readiness or liveness probe: `ready`
        says whether a state to act on is held (from the service or the offline
        cache), `is_healthy(now, max_offline)` whether it is also not cut off from
        the service for too long.

        Example: A readiness and liveness probe
            ```python
            from datetime import datetime, timedelta, timezone

            from frequenz.dispatch import Dispatcher

            async def report_health(dispatcher: Dispatcher, probe) -> None:
                async for status in dispatcher.new_status_receiver():
                    probe.ready = status.ready
                    probe.alive = status.is_healthy(
                        datetime.now(timezone.utc), max_offline=timedelta(minutes=10)
                    )
                    if not status.connected:
                        print(f"dispatch service unreachable: {status.last_error}")
            ```

        Returns:
            A receiver that keeps only the latest status.
        """
        return self._bg_service.new_status_receiver()

    @property
    def client(self) -> DispatchClient:
        """The dispatch API client (create, update, get, delete, list, stream)."""
        return self._client

    @override
    async def __aenter__(self) -> Self:
        """Start the service and wait for the first full sync.

        Returns:
            This dispatcher.
        """
        self.start()
        try:
            await self.wait_for_initialization()
        except BaseException:
            # __aexit__ does not run when __aenter__ fails (for example when a
            # timeout cancels the wait): stop here, or the sync retries forever.
            await self.stop()
            raise
        return self

    @override
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Stop every managed actor and the background service.

        Args:
            exc_type: The type of the exception raised, if any.
            exc_val: The exception raised, if any.
            exc_tb: The traceback of the exception raised, if any.
        """
        await self.stop()

    def new_lifecycle_events_receiver(
        self, dispatch_type: str
    ) -> Receiver[DispatchEvent]:
        """Return new, updated or deleted dispatches receiver.

        Args:
            dispatch_type: The type of the dispatch to listen for.

        Returns:
            A new receiver for new dispatches.
        """
        return self._bg_service.new_lifecycle_events_receiver(dispatch_type)

    def new_running_state_event_receiver(
        self,
        dispatch_type: str,
        *,
        merge_strategy: MergeStrategy | None = None,
    ) -> RunningStateReceiver:
        """Return running state event receiver.

        This receiver will receive a message whenever the current running
        status of a dispatch changes. On creation it first gets every dispatch of
        the type that runs now.

        Usually, one message per scheduled run start and one per run end is to be
        expected (when one run ends exactly as the next starts, one start message
        with the new `until`). However, things get complicated when a dispatch was
        modified: if it was running and the modification says it should not be
        running or running with different parameters, a message is sent.

        In other words: Any change that is expected to make an actor start, stop
        or adjust itself according to new dispatch options causes a message to be
        sent. A non-exhaustive list of possible changes that will cause a message
        to be sent:

         - The normal scheduled start_time has been reached
         - The duration of the dispatch has been modified
         - The start_time has been modified to be in the future
         - The component selection changed
         - The active status changed
         - The dry_run status changed
         - The payload changed
         - The dispatch was deleted

        `merge_strategy` is an instance of a class derived from
        [`MergeStrategy`][frequenz.dispatch.MergeStrategy]. Available strategies
        are:

        * [`MergeByType`][frequenz.dispatch.MergeByType] — merges all dispatches
          of the same type
        * [`MergeByTypeTarget`][frequenz.dispatch.MergeByTypeTarget] — merges all
          dispatches of the same type and target
        * `None` — no merging, just send all events (default)

        While merging, stop events are ignored as long as at least one
        merge-criteria-matching dispatch remains active; when the dispatch whose
        configuration the consumer has stops, the one still running is sent again.

        The receiver can be used directly or awaited (as documented); both give
        the receiver.

        Args:
            dispatch_type: The type of the dispatch to listen for.
            merge_strategy: The type of the strategy to merge running intervals.

        Returns:
            A new receiver for dispatches whose running status changed.
        """
        return self._bg_service.new_running_state_event_receiver(
            dispatch_type, merge_strategy=merge_strategy
        )

    @property
    def running_status_change(self) -> Any:
        """A source of running-state events of every type.

        Deprecated:
            Use `new_running_state_event_receiver(type)` instead.
        """
        warn_deprecated(
            "Dispatcher.running_status_change",
            "use new_running_state_event_receiver(dispatch_type) instead",
        )
        return _ReceiverSource(
            self._bg_service._new_running_state_event_receiver_for_all_types
        )

    @property
    def lifecycle_events(self) -> Any:
        """A source of lifecycle events of every type.

        Deprecated:
            Use `new_lifecycle_events_receiver(type)` instead.
        """
        warn_deprecated(
            "Dispatcher.lifecycle_events",
            "use new_lifecycle_events_receiver(dispatch_type) instead",
        )
        return _ReceiverSource(
            self._bg_service._new_lifecycle_events_receiver_for_all_types
        )


def _build_client(
    *,
    server_url: str | None,
    key: str | None,
    auth_key: str | None,
    sign_secret: str | None,
    call_timeout: timedelta,
    stream_timeout: timedelta,
) -> _ApiClientClass:
    """Build the client from the `Dispatcher`'s connection settings."""
    if key is not None and auth_key is not None and key != auth_key:
        raise ValueError("key and auth_key are the same setting: pass only one")
    secret = auth_key if auth_key is not None else key
    if not isinstance(secret, str) or not secret:
        raise TypeError("key must be a non-empty str (the Dispatch API key)")
    if not isinstance(server_url, str) or not server_url:
        raise TypeError(f"server_url must be a non-empty str, got {server_url!r}")
    return DispatchApiClient(
        server_url=server_url,
        auth_key=secret,
        sign_secret=sign_secret,
        call_timeout=call_timeout,
        stream_timeout=stream_timeout,
    )


class _ReceiverSource:
    """What the deprecated channel properties returned: a receiver factory."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory

    def new_receiver(self) -> Any:
        """Return a new receiver.

        Returns:
            A receiver of every type's events.
        """
        return self._factory()
