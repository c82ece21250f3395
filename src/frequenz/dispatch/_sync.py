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

Message size: list pages start at `LIST_PAGE_SIZE` and halve on
`RESOURCE_EXHAUSTED` (a page over the channel's receive limit), growing back
after pages that fit. A single dispatch that cannot be received even alone
ends the list there: what was listed is reconciled, everything held beyond it
is kept (`complete=False`), and it is logged. A page token carries its page
size (the API's `page_size`/`page_token` are a oneof), so shrinking lists again
from the start; the next sync starts from twice the size that worked. A stream
message too large to receive ends the stream (gRPC fails the call with
`RESOURCE_EXHAUSTED`; its dispatch id cannot be known, the message was never
decoded): it is logged as one lost event and a new cycle re-lists at once, since
the full list is the truth. Events received before it were applied already.

Reconnects: after a connection failure the sync waits until the client's gRPC
channel reports READY (the channel reconnects with its own jittered back-off,
tuned by `_client.CHANNEL_OPTIONS`), so the re-sync starts as soon as the
service accepts connections again. Errors on a READY channel (the service
answers but fails) wait a full-jitter exponential back-off. The log names the
attempt, cause and next try for the first attempts, then one summary a minute
(also while waiting for the channel), and one line when the sync is back. It
reads the event loop's clock, the one its sleeps run on.

This talks to the client's gRPC stub rather than its `list()`/`stream()` helpers:
`stream()` hides reconnects (so a re-sync cannot be triggered), drops messages
when its buffer of 50 fills, and gives up when the server closes the stream
cleanly; `list()` aborts a whole page when one dispatch fails to convert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterable, Callable, Sequence, Set
from dataclasses import dataclass, field
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
        self,
        dispatches: Sequence[Dispatch],
        unreadable: Set[DispatchId],
        complete: bool = True,
    ) -> None:
        """Make the held state equal to a full list from the service.

        Args:
            dispatches: Every dispatch of the microgrid that could be read.
            unreadable: Ids of listed dispatches that could not be read: they
                exist, so a version held of them must be kept, not deleted.
            complete: False when the list stopped early (a dispatch too large
                to receive): held dispatches not listed are kept, not deleted.
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


class RandomSource(Protocol):
    """Where the jitter comes from: `random.Random` has it."""

    def uniform(self, a: float, b: float, /) -> float:
        """Return a random number between `a` and `b`.

        Args:
            a: The lower bound.
            b: The upper bound.
        """


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delays between attempts: exponential, capped, with full jitter."""

    initial: timedelta = timedelta(seconds=0.5)
    """The delay after the first failure, and after a clean stream close."""

    maximum: timedelta = timedelta(seconds=30)
    """The longest delay."""

    jitter: bool = True
    """Full jitter (uniform between 0 and the limit); False waits the limit,
    for tests that check exact delays."""

    rng: RandomSource | None = field(default=None, compare=False, repr=False)
    """The random source of the jitter; None for the module's own. Tests give a
    stub, to check that every delay is drawn from it."""

    def limit(self, failures: int) -> float:
        """Return the longest delay in seconds after consecutive failures.

        Args:
            failures: Consecutive failed attempts (0 after a clean close).

        Returns:
            The exponential, capped limit in seconds.
        """
        factor = float(2 ** min(max(failures - 1, 0), 16))
        return min(self.initial.total_seconds() * factor, self.maximum.total_seconds())

    def delay(self, failures: int) -> float:
        """Return a delay in seconds after consecutive failures, fully jittered.

        Full jitter (uniform between 0 and the limit) keeps a fleet of clients
        that lost the same service from retrying in lock-step.

        Args:
            failures: Consecutive failed attempts (0 after a clean close).

        Returns:
            The delay in seconds.
        """
        if not self.jitter:
            return self.limit(failures)
        return (self.rng or _random).uniform(0.0, self.limit(failures))


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


_random = random.Random()

DEFAULT_BACKOFF = Backoff()
"""Retry within 0.5 s, the limit doubling up to 30 s (full jitter)."""

SUMMARY_INTERVAL = 60.0
"""Once an outage has lasted this long, failures are logged once per interval."""

_DETAILED_ATTEMPTS = 3
"""Attempts of an outage logged one line each before the summaries start."""


def _loop_time() -> float:
    # The event loop's monotonic clock: the one `asyncio.sleep` runs on, so log
    # intervals and back-off delays agree (and move together on a test's loop).
    return asyncio.get_running_loop().time()


class _OutageLog:
    """Logs an outage: its first attempts in detail, then a summary a minute."""

    def __init__(
        self, describe_target: str, now: Callable[[], float] = _loop_time
    ) -> None:
        self._target = describe_target
        self._now = now
        self._since: float | None = None
        self._last_line = 0.0
        self._unlogged = 0
        self._attempts = 0

    def failed(self, synced_before: bool, cause: str, next_try: str) -> None:
        now = self._now()
        if self._since is None:
            self._since = now
            self._attempts = 0
        self._attempts += 1
        if self._attempts > _DETAILED_ATTEMPTS and now - self._last_line < (
            SUMMARY_INTERVAL
        ):
            self._unlogged += 1
            return
        self._last_line = now
        level = logging.WARNING if synced_before else logging.ERROR
        if self._attempts <= _DETAILED_ATTEMPTS:
            _logger.log(
                level,
                "Cannot sync dispatches from %s (attempt %d): %s; next try %s",
                self._target,
                self._attempts,
                cause,
                next_try,
            )
        else:
            _logger.log(
                level,
                "Still cannot sync dispatches from %s after %.0f s: %d attempts"
                " (%d since the last report), last cause %s; next try %s",
                self._target,
                now - self._since,
                self._attempts,
                self._unlogged + 1,
                cause,
                next_try,
            )
        self._unlogged = 0

    def waiting(self, state: str) -> None:
        """Note a channel state seen while waiting for it to connect.

        The channel's own connection attempts are not counted: gRPC keeps a
        channel in TRANSIENT_FAILURE while it retries ("sticky"), so they are
        not visible as state changes.

        Args:
            state: The channel's state.
        """
        now = self._now()
        if self._since is None or now - self._last_line < SUMMARY_INTERVAL:
            return
        self._last_line = now
        _logger.warning(
            "Still waiting for %s after %.0f s (%d attempts): the channel is %s"
            " and gRPC retries the connection about every second; the sync"
            " resumes as soon as it connects",
            self._target,
            now - self._since,
            self._attempts,
            state,
        )

    def recovered(self) -> None:
        if self._since is not None:
            _logger.info(
                "Dispatches re-synced from %s after %.1f s and %d failed attempts",
                self._target,
                self._now() - self._since,
                self._attempts,
            )
        self._since = None
        self._attempts = 0
        self._unlogged = 0


class _StreamMessageLost(Exception):
    """The update stream ended on a message too large to receive."""

    def __init__(self, error: grpc.RpcError) -> None:
        super().__init__(error)
        self.error = error


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
        self._page_size = self.LIST_PAGE_SIZE
        self._synced_once = False
        self._log = _OutageLog(
            f"microgrid {int(microgrid_id)} at"
            f" {getattr(client, 'server_url', 'the Dispatch API')}"
        )
        self.resyncs = 0
        """How many full lists were reconciled (the first included)."""

    async def run(self) -> None:
        """Sync forever: connect, list, follow the stream, reconnect on any end."""
        failures = 0
        log = self._log
        while True:
            resyncs_before = self.resyncs
            error: BaseException | None = None
            lost: grpc.RpcError | None = None
            try:
                await self._connection_cycle()
                _logger.info("Dispatch stream closed by the server; reconnecting")
                self._status.on_disconnected(None)  # status
            except _StreamMessageLost as raised:
                lost = raised.error
                self._status.on_disconnected(lost)  # status
            except (grpc.RpcError, OSError, ConnectionError) as raised:
                error = raised
                self._status.on_disconnected(error)  # status
            if self.resyncs != resyncs_before:
                # A cycle that synced counts as a fresh start: the back-off grows
                # only over attempts that never got through.
                failures = 0
            if lost is not None:
                # Not an outage: service and network work, one message was lost.
                # Re-list soon; the delay only grows if it recurs before a sync.
                failures += 1
                delay = self._backoff.delay(failures)
                self._log_lost_message(lost, delay)
                await asyncio.sleep(delay)
                continue
            if error is None:
                await asyncio.sleep(self._backoff.delay(0))
                continue
            failures += 1
            channel = _channel_of(self._client)
            if channel is not None and _is_connectivity(error, channel):
                log.failed(
                    self._synced_once,
                    _describe(error),
                    "as soon as the channel connects (gRPC retries within ~1 s)",
                )
                await self._wait_ready(channel, log)
                continue
            delay = self._backoff.delay(failures)
            log.failed(self._synced_once, _describe(error), f"in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _log_lost_message(self, error: grpc.RpcError, delay: float) -> None:
        _logger.error(
            "A message on the dispatch stream of microgrid %s could not be received"
            " (%s): one dispatch event is lost (its dispatch id is unknown, the"
            " message was never decoded) and the stream ended; re-listing every"
            " dispatch in %.1f s to recover it (events received before it were"
            " applied)",
            int(self._microgrid_id),
            _describe(error),
            delay,
        )

    async def _wait_ready(self, channel: Any, log: _OutageLog) -> None:
        ready = grpc.ChannelConnectivity.READY
        while True:
            state = channel.get_state(try_to_connect=True)
            if state == ready:
                return
            # Every change is a chance for the once-a-minute summary, not only
            # a minute of silence.
            log.waiting(state.name)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUMMARY_INTERVAL):
                    await channel.wait_for_state_change(state)

    def _on_synced(self) -> None:
        self._synced_once = True
        self.resyncs += 1

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
            dispatches, unreadable, complete = await self._list_all()
            with gc_paused():
                self._target.reconcile(dispatches, unreadable, complete)
            self._status.on_full_sync(listing)  # status
            self._on_synced()
            self._log.recovered()
            while True:
                while queue:
                    self._apply(queue.popleft())
                if reader.done():
                    _stream_result(reader)  # raises what ended it, if anything
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
            _stream_result(reader)

    async def _list_all(self) -> tuple[list[Dispatch], set[DispatchId], bool]:
        stub = self._client.stub
        timeout = _seconds(self._client.call_timeout)
        dispatches: list[Dispatch] = []
        unreadable: set[DispatchId] = set()
        size = self._page_size
        token = ""
        while True:
            # `page_size` and `page_token` are a oneof: a token carries the page
            # size it was made with, so a smaller page means listing again.
            params = (
                PaginationParams(page_token=token)
                if token
                else PaginationParams(page_size=size)
            )
            request = ListMicrogridDispatchesRequest(
                microgrid_id=int(self._microgrid_id), pagination_params=params
            )
            try:
                response = await stub.ListMicrogridDispatches(request, timeout=timeout)
            except grpc.RpcError as error:
                if _code(error) != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                if size > 1:
                    size = max(1, size // 2)
                    dispatches, unreadable, token = [], set(), ""
                    _logger.info(
                        "List page too large (%s); asking for %d",
                        _describe(error),
                        size,
                    )
                    continue
                after = int(dispatches[-1].id) if dispatches else None
                _logger.error(
                    "A dispatch of microgrid %s cannot be received (%s): it is the"
                    " one listed after dispatch %s; skipping it and the rest of the"
                    " list (their held versions are kept)",
                    int(self._microgrid_id),
                    _describe(error),
                    after,
                )
                self._page_size = self.LIST_PAGE_SIZE
                return dispatches, unreadable, False
            for pb_dispatch in response.dispatches:
                if (dispatch := convert(pb_dispatch)) is not None:
                    dispatches.append(dispatch)
                else:
                    unreadable.add(DispatchId(pb_dispatch.metadata.dispatch_id))
            token = response.pagination_info.next_page_token
            if not token:
                # Grow back for the next sync, so one large page long ago does
                # not keep every later sync slow.
                self._page_size = min(self.LIST_PAGE_SIZE, size * 2)
                return dispatches, unreadable, True

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


def _stream_result(reader: asyncio.Task[None]) -> None:
    """Raise what ended the stream; a message too large as `_StreamMessageLost`."""
    try:
        reader.result()
    except grpc.RpcError as error:
        # The channel's receive limit covers any dispatch the API can create, but
        # a server may allow larger ones: gRPC then fails the whole call.
        if _code(error) == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise _StreamMessageLost(error) from error
        raise


def _update_time(metadata: Any) -> datetime | None:
    try:
        return to_datetime(metadata.update_time) if metadata.update_time else None
    except (ValueError, OverflowError):
        return None


def _code(error: BaseException) -> grpc.StatusCode | None:
    code = getattr(error, "code", None)
    if callable(code):
        value = code()
        if isinstance(value, grpc.StatusCode):
            return value
    return None


def _channel_of(client: Any) -> Any:
    """The client's gRPC aio channel, None for a client without one (a fake)."""
    try:
        channel = getattr(client, "channel", None)
    except Exception:
        return None
    if channel is None or not callable(getattr(channel, "get_state", None)):
        return None
    return channel


def _is_connectivity(error: BaseException, channel: Any) -> bool:
    """Whether the error means the channel has no connection to the service."""
    if _code(error) != grpc.StatusCode.UNAVAILABLE:
        return False
    return bool(channel.get_state() != grpc.ChannelConnectivity.READY)


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
