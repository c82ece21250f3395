# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Keeping a local copy of a microgrid's dispatches equal to the service's.

One connection cycle: open the update stream, wait until the subscription is live,
list every dispatch (all pages), hand the full list over for reconciliation, then
apply the stream's events until it ends. Any end (error or clean close) starts a
new cycle after a back-off, so changes made while disconnected are found by the
new full list. Subscribing before listing means nothing created in between is
missed; events older than the listed state are rejected downstream by
`update_time`.

This talks to the client's gRPC stub rather than its `list()`/`stream()` helpers:
`stream()` hides reconnects (so a re-sync cannot be triggered), drops messages
when its buffer of 50 fills, and gives up when the server closes the stream
cleanly; `list()` aborts a whole page when one dispatch fails to convert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import grpc
from frequenz.api.common.v1alpha8.pagination.pagination_params_pb2 import (
    PaginationParams,
)
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    Dispatch as PBDispatch,
)
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    ListMicrogridDispatchesRequest,
    StreamMicrogridDispatchesRequest,
    StreamMicrogridDispatchesResponse,
)
from frequenz.client.base.conversion import to_datetime
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.types import DispatchId

from ._api import DispatchApi, StreamCall
from ._dispatch import Dispatch
from ._gc import gc_paused
from ._status import StatusRecorder
from ._wire import dispatch_from_protobuf

_logger = logging.getLogger(__name__)


class SyncTarget(Protocol):
    """What the sync feeds: the scheduler's state."""

    def reconcile(
        self, dispatches: Sequence[Dispatch], unreadable: Set[DispatchId]
    ) -> None:
        """Make the held state equal to a full list from the service.

        Args:
            dispatches: Every dispatch of the microgrid that could be read.
            unreadable: Ids of listed dispatches that could not be read: they
                exist, so a version held of them must be kept, not deleted.
        """

    def apply(self, event: Event, dispatch: Dispatch) -> None:
        """Apply one event from the update stream.

        Args:
            event: What happened.
            dispatch: The dispatch it happened to.
        """

    def apply_unreadable(
        self, event: Event, dispatch_id: DispatchId, update_time: datetime | None
    ) -> None:
        """Apply a stream event whose dispatch cannot be read.

        Args:
            event: What happened.
            dispatch_id: The dispatch's id (always readable).
            update_time: The unreadable version's update time, if readable.
        """


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delays between connection attempts: exponential, capped."""

    initial: timedelta = timedelta(seconds=0.5)
    """The delay after the first failure, and after a clean stream close."""

    maximum: timedelta = timedelta(seconds=30)
    """The longest delay."""

    def delay(self, failures: int) -> float:
        """Return the delay in seconds after a number of consecutive failures.

        Args:
            failures: Consecutive failed attempts (0 after a clean close).

        Returns:
            The delay in seconds.
        """
        factor = float(2 ** min(max(failures - 1, 0), 16))
        return min(self.initial.total_seconds() * factor, self.maximum.total_seconds())


def convert(pb_dispatch: PBDispatch) -> Dispatch | None:
    """Convert a dispatch from the wire, or log why it cannot be.

    Args:
        pb_dispatch: The protobuf dispatch.

    Returns:
        The dispatch, or None when it cannot be interpreted (for example an enum
            value from a newer server).
    """
    try:
        return dispatch_from_protobuf(pb_dispatch)
    except Exception as error:
        _logger.error(
            "Skipping dispatch %s that cannot be read: %s",
            pb_dispatch.metadata.dispatch_id,
            error,
        )
        return None


DEFAULT_BACKOFF = Backoff()
"""Retry after 0.5 s, doubling up to 30 s."""


class DispatchSync:
    """Keeps a `SyncTarget` equal to the service's dispatches of one microgrid."""

    LIST_PAGE_SIZE = 1000
    """How many dispatches to ask for per list page."""

    SUBSCRIPTION_GRACE = timedelta(seconds=2)
    """How long to wait for a server to confirm the stream before listing anyway."""

    def __init__(
        self,
        microgrid_id: MicrogridId,
        client: DispatchApi,
        target: SyncTarget,
        *,
        backoff: Backoff = DEFAULT_BACKOFF,
        status: StatusRecorder | None = None,
    ) -> None:
        """Initialize the sync.

        Args:
            microgrid_id: The microgrid whose dispatches to sync.
            client: The raw frequenz-client-dispatch client (its `stub`,
                `call_timeout` and `server_url` are used).
            target: Where the state goes.
            backoff: Delays between connection attempts.
            status: Told about connections, failures and full syncs.
        """
        self._status = StatusRecorder() if status is None else status
        self._microgrid_id = microgrid_id
        self._client = client
        self._target = target
        self._backoff = backoff
        self._synced_once = False
        self.resyncs = 0
        """How many full lists were reconciled (the first included)."""

    async def run(self) -> None:
        """Sync forever: connect, list, follow the stream, reconnect on any end."""
        failures = 0
        while True:
            resyncs_before = self.resyncs
            try:
                await self._connection_cycle()
                failures = 0
                _logger.info("Dispatch stream closed by the server; reconnecting")
                self._status.on_disconnected(None)  # status
            except (grpc.RpcError, OSError, ConnectionError) as error:
                self._status.on_disconnected(error)  # status
                # A cycle that synced counts as a fresh start: the back-off grows
                # only over attempts that never got through.
                failures = 1 if self.resyncs != resyncs_before else failures + 1
                self._report(error, failures)
            await asyncio.sleep(self._backoff.delay(failures))

    def _report(self, error: BaseException, failures: int) -> None:
        delay = self._backoff.delay(failures)
        url = self._client.server_url
        details = _describe(error)
        if not self._synced_once:
            _logger.error(
                "Cannot sync dispatches of microgrid %s from %s (attempt %d): %s;"
                " retrying in %.1f s",
                int(self._microgrid_id),
                url,
                failures,
                details,
                delay,
            )
        else:
            _logger.warning(
                "Dispatch stream from %s lost: %s; re-syncing in %.1f s",
                url,
                details,
                delay,
            )

    async def _connection_cycle(self) -> None:
        stub = self._client.stub
        call = StreamCall.of(
            stub.StreamMicrogridDispatches(
                StreamMicrogridDispatchesRequest(microgrid_id=int(self._microgrid_id)),
                # No deadline: a deadline would end the stream periodically and force
                # a full re-list each time. Dead connections are found by keep-alive.
                timeout=None,
            )
        )
        queue: deque[StreamMicrogridDispatchesResponse] = deque()
        arrived = asyncio.Event()
        reader = asyncio.create_task(_read_stream(call, queue, arrived))
        try:
            await self._wait_until_subscribed(call, reader)
            listing = self._status.on_listing()  # status
            with gc_paused():
                self._target.reconcile(*await self._list_all())
            self._status.on_full_sync(listing)  # status
            self._synced_once = True
            self.resyncs += 1
            while True:
                while queue:
                    self._apply(queue.popleft())
                if reader.done():
                    reader.result()  # raises what ended the stream, if anything
                    return
                arrived.clear()
                await arrived.wait()
        finally:
            reader.cancel()
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _wait_until_subscribed(
        self, call: Any, reader: asyncio.Task[None]
    ) -> None:
        # A real server confirms the subscription with its initial metadata. One
        # that only sends it with the first event must not delay the sync forever.
        confirmed = asyncio.ensure_future(call.initial_metadata())
        try:
            await asyncio.wait(
                {confirmed, reader},
                timeout=self.SUBSCRIPTION_GRACE.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            confirmed.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await confirmed
        if reader.done():
            reader.result()

    async def _list_all(self) -> tuple[list[Dispatch], set[DispatchId]]:
        stub = self._client.stub
        timeout = _seconds(self._client.call_timeout)
        request = ListMicrogridDispatchesRequest(
            microgrid_id=int(self._microgrid_id),
            pagination_params=PaginationParams(page_size=self.LIST_PAGE_SIZE),
        )
        dispatches: list[Dispatch] = []
        unreadable: set[DispatchId] = set()
        while True:
            response = await stub.ListMicrogridDispatches(request, timeout=timeout)
            for pb_dispatch in response.dispatches:
                if (dispatch := convert(pb_dispatch)) is not None:
                    dispatches.append(dispatch)
                else:
                    unreadable.add(DispatchId(pb_dispatch.metadata.dispatch_id))
            token = response.pagination_info.next_page_token
            if not token:
                return dispatches, unreadable
            request.pagination_params.CopyFrom(PaginationParams(page_token=token))

    def _apply(self, response: StreamMicrogridDispatchesResponse) -> None:
        try:
            event = Event(response.event)
        except ValueError:
            _logger.error(
                "Skipping stream event %r for dispatch %s: unknown event type",
                response.event,
                response.dispatch.metadata.dispatch_id,
            )
            return
        dispatch = convert(response.dispatch)
        if dispatch is None:
            # A delete acts on the id, and a running dispatch whose new version
            # cannot be read is stopped: never act on a replaced version.
            metadata = response.dispatch.metadata
            self._target.apply_unreadable(
                event, DispatchId(metadata.dispatch_id), _update_time(metadata)
            )
            return
        self._target.apply(event, dispatch)


async def _read_stream(
    call: AsyncIterable[StreamMicrogridDispatchesResponse],
    queue: deque[StreamMicrogridDispatchesResponse],
    arrived: asyncio.Event,
) -> None:
    # Reading into an unbounded queue keeps the subscription drained while the
    # full list is fetched, so gRPC flow control never stalls the server.
    try:
        async for response in call:
            queue.append(response)
            arrived.set()
    finally:
        arrived.set()


def _update_time(metadata: Any) -> datetime | None:
    try:
        return to_datetime(metadata.update_time) if metadata.update_time else None
    except (ValueError, OverflowError):
        return None


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    if isinstance(error, grpc.RpcError):
        code = getattr(error, "code", None)
        if callable(code):
            return f"{code()}: {error}"
    return f"{type(error).__name__}: {error}"
