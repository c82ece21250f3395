# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Starting, reconfiguring and stopping actors from running-state events."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from frequenz.channels import Receiver
from frequenz.client.dispatch.types import DispatchId, TargetComponents
from frequenz.core.id import BaseId
from frequenz.sdk.actor import Actor, BackgroundService
from typing_extensions import override

from ._clock import wall_clock
from ._delivery import UnboundedReceiver
from ._dispatch import Dispatch

_logger = logging.getLogger(__name__)


class DispatchActorId(BaseId, str_prefix="DA"):
    """The identity of the actor a dispatch maps to.

    `MergeStrategy.identity()` returns one; dispatches with equal identities drive
    the same actor. Without a merge strategy a dispatch's identity is built from
    its id.
    """

    def __init__(self, dispatch_id: DispatchId | int) -> None:
        """Initialize the identity.

        Args:
            dispatch_id: A dispatch id, or any non-negative int (a merge strategy
                uses a hash of what it merges by).

        Raises:
            TypeError: If `dispatch_id` is not an int or a `DispatchId`.
            ValueError: If it is negative.
        """
        if isinstance(dispatch_id, bool) or not isinstance(
            dispatch_id, int | DispatchId
        ):
            raise TypeError(
                f"DispatchActorId needs an int or DispatchId, got {dispatch_id!r}"
            )
        super().__init__(int(dispatch_id))


@dataclass(frozen=True, init=False)
class DispatchInfo:
    """Event emitted when the dispatch changes."""

    target: TargetComponents
    """The target components (empty: all components)."""

    dry_run: bool
    """Whether this is a dry run."""

    options: dict[str, Any]
    """Additional options (the dispatch's payload)."""

    _src: Dispatch | None = field(default=None, compare=False, repr=False)
    """The dispatch this information was taken from (None if built by hand)."""

    def __init__(
        self,
        *,
        target: TargetComponents | None = None,
        components: TargetComponents | None = None,
        dry_run: bool,
        options: dict[str, Any],
        _src: Dispatch | None = None,
    ) -> None:
        """Initialize the information.

        Args:
            target: The target components.
            components: The same as `target`, under the seeds' name for it.
            dry_run: Whether this is a dry run.
            options: Additional options.
            _src: The dispatch this information is taken from.

        Raises:
            ValueError: If both or neither of `target` and `components` are given.
        """
        if target is not None and components is not None:
            raise ValueError(
                "DispatchInfo: pass either target or components (the same field)"
            )
        chosen = target if target is not None else components
        if chosen is None:
            raise ValueError("DispatchInfo: target (or components) is required")
        # A frozen dataclass with its own __init__ sets its fields this way.
        object.__setattr__(self, "target", chosen)
        object.__setattr__(self, "dry_run", dry_run)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "_src", _src)

    @property
    def components(self) -> TargetComponents:
        """Components to be used: the same value as `target`, under the seeds' name."""
        return self.target

    @classmethod
    def of(cls, dispatch: Dispatch) -> DispatchInfo:
        """Return what an actor needs to know of a dispatch.

        Args:
            dispatch: The dispatch.

        Returns:
            Its target, dry-run flag and payload.
        """
        return cls(
            target=dispatch.target,
            dry_run=dispatch.dry_run,
            options=dispatch.payload,
            _src=dispatch,
        )


ActorFactory = Callable[[DispatchInfo, Receiver[DispatchInfo]], Awaitable[Actor]]
"""Creates an actor from its first dispatch information and its updates receiver."""


async def _maybe_await(result: object) -> None:
    # Actors are usually SDK actors, but tests and the documented examples pass
    # mocks whose methods return plain values.
    if inspect.isawaitable(result):
        await result


def _latest_value_receiver(name: str) -> UnboundedReceiver[DispatchInfo]:
    # An actor only needs its newest configuration: each update replaces the
    # one it has not read yet (frequenz-channels' broadcast channel with limit=1
    # would do the same, but it warns about its own deprecation in 1.12).
    return UnboundedReceiver[DispatchInfo](
        name=name, coalesce_key=lambda _: None, supersedes=lambda _new, _old: True
    )


async def _call_factory(
    factory: ActorFactory, info: DispatchInfo, receiver: Receiver[DispatchInfo]
) -> Actor:
    # The documented example passes a plain classmethod returning the actor. An
    # actor is itself awaitable (awaiting waits for its tasks), so only await
    # what is awaitable and not already the actor.
    result: Any = factory(info, receiver)
    if inspect.isawaitable(result) and not isinstance(result, BackgroundService):
        result = await result
    actor: Actor = result
    return actor


def _run_is_over(dispatch: Dispatch) -> bool:
    until = dispatch.until
    return until is not None and wall_clock() >= until


class _ManagedActor:
    """The actor of one identity, driven by the latest event for that identity.

    Only the latest event matters: a newer one replaces a pending one, including a
    pending retry of a failed start. Events of one identity are handled in order
    by one task, so a slow factory delays only its own identity.
    """

    def __init__(
        self,
        identity: Hashable,
        factory: ActorFactory,
        retry_interval: timedelta,
    ) -> None:
        self._identity = identity
        self._factory = factory
        self._retry_interval = retry_interval.total_seconds()
        self._desired: Dispatch | None = None
        self._changed = asyncio.Event()
        self._actor: Actor | None = None
        self._updates: UnboundedReceiver[DispatchInfo] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._actor_died = False
        self._switch: Dispatch | None = None
        self._retrying = False
        self.closed = False
        """Whether this manager is done; events must go to a new one."""

    def want(self, dispatch: Dispatch) -> None:
        """Make `dispatch` the state to reach.

        A start that is followed by a stop before it was handled still runs
        first: that is a switch (a zero-duration dispatch), which starts and
        stops at once, and its factory must see it.

        Args:
            dispatch: The latest running-state event for this identity.
        """
        pending = self._desired
        if (
            not dispatch.started
            and self._changed.is_set()
            and pending is not None
            and pending.started
            and self._actor is None
            and not self._retrying
        ):
            self._switch = pending
        self._desired = dispatch
        self._changed.set()

    async def run(self) -> None:
        """Drive the actor until a stop event is handled."""
        retry_in: float | None = None
        try:
            while True:
                await self._wait_for_change(retry_in)
                self._changed.clear()
                retry_in = None
                self._retrying = False
                desired = self._desired
                assert desired is not None
                switch, self._switch = self._switch, None
                if switch is not None and not desired.started:
                    await self._start_actor(switch)
                if not desired.started:
                    await self._stop_actor("Dispatch stopped")
                    if self._changed.is_set():
                        continue  # a newer event arrived while the actor stopped
                    # No await between the check above and this: an event that
                    # comes later finds this closed and gets a new manager.
                    self.closed = True
                    return
                if self._actor is not None:
                    await self._send_update(desired)
                elif _run_is_over(desired):
                    # Its stop is on its way (a retry can come due at the very
                    # instant the run ends): no actor for a run that is over.
                    pass
                elif self._actor_died:
                    # Do not hot-loop on an actor that keeps crashing.
                    self._actor_died = False
                    retry_in = self._retry_interval
                elif not await self._start_actor(desired):
                    retry_in = self._retry_interval
                if retry_in is not None:
                    # A stop now replaces the retry: nothing is started for it.
                    self._retrying = True
        finally:
            await self._stop_actor("Actor dispatcher stopped")

    async def _wait_for_change(self, timeout: float | None) -> None:
        if timeout is None:
            await self._changed.wait()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            _logger.info("Retrying to start the actor for %r", self._identity)

    async def _start_actor(self, dispatch: Dispatch) -> bool:
        info = DispatchInfo.of(dispatch)
        receiver = _latest_value_receiver(f"dispatch-updates:{self._identity}")
        try:
            _logger.info(
                "Starting actor for dispatch %s (type %r)", dispatch.id, dispatch.type
            )
            actor = await _call_factory(self._factory, info, receiver)
            actor.start()
        except Exception:
            _logger.exception(
                "Failed to start the actor for dispatch %s (type %r); retrying in %s",
                dispatch.id,
                dispatch.type,
                timedelta(seconds=self._retry_interval),
            )
            receiver.close()
            return False
        self._actor = actor
        self._updates = receiver
        wait = getattr(actor, "wait", None)
        if inspect.iscoroutinefunction(wait):
            self._watcher = asyncio.create_task(self._watch(actor))
        return True

    async def _send_update(self, dispatch: Dispatch) -> None:
        assert self._updates is not None
        if self._updates.is_closed:
            _logger.warning(
                "The actor for %r closed its updates receiver; update dropped",
                self._identity,
            )
        self._updates.enqueue(DispatchInfo.of(dispatch))

    async def _watch(self, actor: Actor) -> None:
        try:
            await actor.wait()
            _logger.error("The actor for %r stopped by itself", self._identity)
        except Exception:
            _logger.exception("The actor for %r crashed", self._identity)
        if self._actor is actor:
            self._actor = None
            self._actor_died = True
            self._close_updates()
            self._changed.set()

    async def _stop_actor(self, reason: str) -> None:
        actor, self._actor = self._actor, None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if actor is None:
            return
        _logger.info("Stopping the actor for %r: %s", self._identity, reason)
        try:
            await _maybe_await(actor.stop(reason))
        except Exception:
            # Only errors: cancellation, KeyboardInterrupt and SystemExit go on.
            _logger.exception("The actor for %r failed while stopping", self._identity)
        finally:
            self._close_updates()

    def _close_updates(self) -> None:
        if self._updates is not None:
            self._updates.close()
            self._updates = None


class ActorDispatcher(BackgroundService):
    """Helper class to manage actors based on dispatches.

    Consumes running-state events. For a start event of an identity without actor,
    it awaits `actor_factory(DispatchInfo, updates_receiver)` and starts the actor;
    for a start event of an identity whose actor runs, it sends the new
    `DispatchInfo` to that actor's updates receiver only (which always keeps the
    latest); a stop event stops the actor. A factory that raises is retried every
    `retry_interval` for as long as its dispatch should still run. An actor that
    crashes is logged and recreated after `retry_interval` while its dispatch runs.
    Stopping the `ActorDispatcher` stops every actor it started.

    Example usage:

    ```python
    import os
    import asyncio
    from typing import override
    from frequenz.dispatch import Dispatcher, ActorDispatcher, DispatchInfo
    from frequenz.client.dispatch.types import TargetComponents
    from frequenz.client.common.microgrid.electrical_components import (
        ElectricalComponentCategory as ComponentCategory,
    )
    from frequenz.channels import Receiver, Broadcast, select, selected_from
    from frequenz.sdk.actor import Actor, run

    class MyActor(Actor):
        def __init__(
                self,
                *,
                name: str | None = None,
        ) -> None:
            super().__init__(name=name)
            self._dispatch_updates_receiver: Receiver[DispatchInfo] | None = None
            self._dry_run: bool = False
            self._options: dict[str, Any] = {}

        @classmethod
        def new_with_dispatch(
                cls,
                initial_dispatch: DispatchInfo,
                dispatch_updates_receiver: Receiver[DispatchInfo],
                *,
                name: str | None = None,
        ) -> "Self":
            self = cls(name=name)
            self._dispatch_updates_receiver = dispatch_updates_receiver
            self._update_dispatch_information(initial_dispatch)
            return self

        @override
        async def _run(self) -> None:
            other_recv: Receiver[Any] = ...

            if self._dispatch_updates_receiver is None:
                async for msg in other_recv:
                    # do stuff
                    ...
            else:
                await self._run_with_dispatch(other_recv)

        async def _run_with_dispatch(self, other_recv: Receiver[Any]) -> None:
            async for selected in select(self._dispatch_updates_receiver, other_recv):
                if selected_from(selected, self._dispatch_updates_receiver):
                    self._update_dispatch_information(selected.message)
                elif selected_from(selected, other_recv):
                    # do stuff
                    ...
                else:
                    assert False, f"Unexpected selected receiver: {selected}"

        def _update_dispatch_information(self, dispatch_update: DispatchInfo) -> None:
            print("Received update:", dispatch_update)
            self._dry_run = dispatch_update.dry_run
            self._options = dispatch_update.options
            match dispatch_update.components:
                case []:
                    print("Dispatch: Using all components")
                case list() as ids if isinstance(ids[0], int):
                    component_ids = ids
                case [ComponentCategory.BATTERY, *_]:
                    component_category = ComponentCategory.BATTERY
                case unsupported:
                    print(
                        "Dispatch: Requested an unsupported selector %r, "
                        "but only component IDs or category BATTERY are supported.",
                        unsupported,
                    )

    async def main():
        url = os.getenv("DISPATCH_API_URL", "grpc://fz-0004.frequenz.io:50051")
        key  = os.getenv("DISPATCH_API_KEY", "some-key")

        microgrid_id = 1

        async with Dispatcher(
            microgrid_id=microgrid_id,
            server_url=url,
            key=key
        ) as dispatcher:
            status_receiver = dispatcher.new_running_state_event_receiver("EXAMPLE_TYPE")

            managing_actor = ActorDispatcher(
                actor_factory=MyActor.new_with_dispatch,
                running_status_receiver=status_receiver,
            )

            await run(managing_actor)
    ```
    """

    def __init__(
        self,
        actor_factory: ActorFactory,
        running_status_receiver: Receiver[Dispatch],
        dispatch_identity: Callable[[Dispatch], Hashable] | None = None,
        retry_interval: timedelta = timedelta(seconds=60),
    ) -> None:
        """Initialize the dispatch handler.

        Args:
            actor_factory: A callable that creates an actor with some initial
                dispatch information.
            running_status_receiver: The receiver for dispatch running status
                changes.
            dispatch_identity: A function to identify to which actor a dispatch
                refers (any hashable result, such as a `DispatchActorId` or an
                int). By default, `DispatchActorId(dispatch.id)`.
            retry_interval: The interval between retries.

        Raises:
            TypeError: If `actor_factory` or `dispatch_identity` is not callable,
                or `retry_interval` is not a timedelta.
            ValueError: If `retry_interval` is not positive.
        """
        super().__init__()
        if not callable(actor_factory):
            raise TypeError(f"actor_factory must be callable, got {actor_factory!r}")
        if dispatch_identity is not None and not callable(dispatch_identity):
            raise TypeError(
                f"dispatch_identity must be callable or None, got {dispatch_identity!r}"
            )
        if not isinstance(retry_interval, timedelta):
            raise TypeError(
                f"retry_interval must be a timedelta, got {retry_interval!r}"
            )
        if retry_interval <= timedelta(0):
            raise ValueError(f"retry_interval must be positive, got {retry_interval}")
        self._actor_factory = actor_factory
        self._dispatch_rx = running_status_receiver
        self._dispatch_identity: Callable[[Dispatch], Hashable] = (
            dispatch_identity if dispatch_identity is not None else _by_id
        )
        self._retry_interval = retry_interval
        self._managed: dict[Hashable, tuple[_ManagedActor, asyncio.Task[None]]] = {}
        self._identity_of: dict[DispatchId, Hashable] = {}
        self._identity_failed: set[DispatchId] = set()

    @override
    def start(self) -> None:
        """Start handling running-state events; does nothing if already running."""
        if not self.is_running:
            self._tasks.add(asyncio.create_task(self._run()))

    async def _run(self) -> None:
        async for dispatch in self._dispatch_rx:
            identity = self._identify(dispatch)
            if identity is None:
                continue
            managed = self._managed.get(identity)
            if managed is None or managed[0].closed:
                if not dispatch.started:
                    _logger.debug("No actor runs for %r: nothing to stop", identity)
                    continue
                managed = self._manage(identity)
            managed[0].want(dispatch)

    def _identify(self, dispatch: Dispatch) -> Hashable | None:
        # `dispatch_identity` is user code: when it raises, the event goes to the
        # actor the dispatch was last mapped to (so a stop is never lost), or is
        # skipped if there is none. Only this actor dispatcher is affected.
        try:
            identity = self._dispatch_identity(dispatch)
        except Exception:
            identity = self._identity_of.get(dispatch.id)
            if dispatch.id not in self._identity_failed:
                self._identity_failed.add(dispatch.id)
                _logger.exception(
                    "dispatch_identity %r failed for dispatch %s (type %r); %s "
                    "(logged once per dispatch)",
                    self._dispatch_identity,
                    int(dispatch.id),
                    dispatch.type,
                    "it is not run"
                    if identity is None
                    else f"the event goes to its last actor {identity!r}",
                )
            if identity is None:
                return None
        if dispatch.started:
            self._identity_of[dispatch.id] = identity
        else:
            self._identity_of.pop(dispatch.id, None)
        return identity

    def _manage(self, identity: Hashable) -> tuple[_ManagedActor, asyncio.Task[None]]:
        actor = _ManagedActor(identity, self._actor_factory, self._retry_interval)
        task = asyncio.create_task(actor.run(), name=f"actor:{identity}")
        managed = (actor, task)
        self._managed[identity] = managed
        self._tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            if self._managed.get(identity) is managed:
                del self._managed[identity]
            self._tasks.discard(done)
            if not done.cancelled() and (error := done.exception()) is not None:
                _logger.error("Managing %r failed", identity, exc_info=error)

        task.add_done_callback(forget)
        return managed


def _by_id(dispatch: Dispatch) -> Hashable:
    return DispatchActorId(dispatch.id)
