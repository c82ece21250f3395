# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A controllable fake of the Dispatch API for sync tests.

`ControllableClient` is the `FakeClient` the client library ships, with its stub
replaced by `ControllableService`. The service keeps the dispatches the way
`FakeService` does (its dict and its Create/Update/Delete methods work as before),
but every update stream is under the test's control:

* `break_streams()` ends every open stream with an UNAVAILABLE `AioRpcError` and
  keeps the service unreachable (new streams and lists fail too) until
  `reconnect()`. Changes made meanwhile reach no stream.
* `close_streams()` ends every open stream cleanly (the generator returns).
* `fail_lists(n)` makes the next `n` list calls fail with UNAVAILABLE.
* `fail_next_stream(error)` / `break_streams_with(error)` raise an arbitrary
  exception from a new / the open streams.
* `calls` records, in order and with the (fake) time, every stream call, every
  stream subscription (the moment the generator starts listening) and every list.
* `push_event()` / `push_raw()` put any event on the open streams without touching
  the stored dispatches (for example a version older than the one held).
* `on_subscribe` / `after_list` run a coroutine right after a stream subscribed /
  right after a list snapshot was taken, to make changes race the sync.
* `page_size` caps list pages, so that pagination is exercised.
* `call_style` makes stream calls return a gRPC-like call object whose
  `initial_metadata()` confirms the subscription (`"confirming"`) or only arrives
  with the first message (`"lazy"`, as a grpc.aio server that does not send its
  headers early), instead of a bare async generator; `subscribe_delay` delays the
  subscription itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Literal

import grpc
import grpc.aio
from frequenz.api.common.v1alpha8.pagination.pagination_info_pb2 import (
    PaginationInfo,
)
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    Dispatch as PBDispatch,
)
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    ListMicrogridDispatchesRequest,
    ListMicrogridDispatchesResponse,
    StreamMicrogridDispatchesRequest,
    StreamMicrogridDispatchesResponse,
)
from frequenz.channels import Sender
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.streaming import Event
from frequenz.client.dispatch.test._service import FakeService
from frequenz.client.dispatch.test.client import FakeClient
from frequenz.client.dispatch.types import Dispatch

__all__ = ["Call", "ControllableClient", "ControllableService", "unavailable"]


def unavailable(
    details: str = "the fake service is unreachable",
) -> grpc.aio.AioRpcError:
    """Return the error a real channel raises when the server is unreachable."""
    return grpc.aio.AioRpcError(
        code=grpc.StatusCode.UNAVAILABLE,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(),
        details=details,
        debug_error_string=None,
    )


@dataclasses.dataclass(frozen=True)
class Call:
    """One recorded interaction with the fake service."""

    kind: str
    """`"stream"` (stream call), `"subscribed"` (the stream listens) or `"list"`."""

    at: datetime
    """When it happened (fake wall clock)."""

    timeout: float | None = None
    """The deadline the call was made with (stream and list calls)."""


@dataclasses.dataclass(frozen=True)
class _End:
    """Queued on a stream to end it: with an error, or cleanly if None."""

    error: BaseException | None


class _Stream:
    """One open update stream: a microgrid and a queue of what to yield."""

    def __init__(self, microgrid_id: MicrogridId) -> None:
        self.microgrid_id = microgrid_id
        self.queue: asyncio.Queue[StreamMicrogridDispatchesResponse | _End] = (
            asyncio.Queue()
        )


class _Call(AsyncIterator[StreamMicrogridDispatchesResponse]):
    """A gRPC-like stream call: iterable, with `initial_metadata()` and `cancel()`."""

    def __init__(
        self,
        stream: AsyncIterator[StreamMicrogridDispatchesResponse],
        confirmed: asyncio.Future[None],
    ) -> None:
        self._stream = stream
        self._confirmed = confirmed
        self.cancelled = False

    async def __anext__(self) -> StreamMicrogridDispatchesResponse:
        return await anext(self._stream)

    async def initial_metadata(self) -> grpc.aio.Metadata:
        """Return the headers once the server sent them."""
        await asyncio.shield(self._confirmed)
        return grpc.aio.Metadata()

    def cancel(self) -> bool:
        """Cancel the call."""
        self.cancelled = True
        return True


class _Fanout(Sender[FakeService.StreamEvent]):
    """Replaces FakeService's broadcast sender: delivers to the open streams."""

    def __init__(self, service: ControllableService) -> None:
        self._service = service

    async def send(self, message: FakeService.StreamEvent, /) -> None:
        self._service.push_event(
            message.event.event, message.event.dispatch, message.microgrid_id
        )

    async def aclose(self) -> None:
        pass


class ControllableService(FakeService):
    """A `FakeService` whose streams and lists the test controls."""

    def __init__(self) -> None:
        super().__init__()
        # FakeService's Create/Update/Delete publish through this sender.
        self._stream_sender = _Fanout(self)  # type: ignore[assignment]
        self._streams: list[_Stream] = []
        self._list_failures = 0
        self._next_stream_error: BaseException | None = None
        self.connected = True
        """Whether the service is reachable."""
        self.calls: list[Call] = []
        """Every stream call, subscription and list call, in order."""
        self.on_subscribe: Callable[[], Awaitable[None]] | None = None
        """Run right after a stream subscribed, before it yields anything."""
        self.after_list: Callable[[], Awaitable[None]] | None = None
        """Run after a list page was computed, before it is returned."""
        self.extra_list_dispatches: list[PBDispatch] = []
        """Raw protobuf dispatches appended to every list (e.g. malformed ones)."""
        self.page_size: int | None = None
        """The largest page the service returns; None for the request's size."""
        self.pushed = 0
        """How many stream messages were put on open streams."""
        self.call_style: Literal["generator", "confirming", "lazy"] = "confirming"
        """What a stream call returns; see the module docstring."""
        self.subscribe_delay = timedelta(0)
        """How long a new stream takes to subscribe once it is read."""

    # Control

    @property
    def call_kinds(self) -> list[str]:
        """The kinds of the recorded calls, in order."""
        return [call.kind for call in self.calls]

    @property
    def open_streams(self) -> int:
        """How many streams are subscribed now."""
        return len(self._streams)

    def break_streams(self) -> None:
        """End every open stream with UNAVAILABLE and stay unreachable."""
        self.connected = False
        self.break_streams_with(unavailable("connection lost"))

    def reconnect(self) -> None:
        """Make the service reachable again."""
        self.connected = True

    def break_streams_with(self, error: BaseException) -> None:
        """End every open stream with an arbitrary error.

        Args:
            error: What the stream raises.
        """
        self._end_all(_End(error))

    def close_streams(self) -> None:
        """End every open stream cleanly, as a server closing it does."""
        self._end_all(_End(None))

    def fail_lists(self, count: int) -> None:
        """Make the next `count` list calls fail with UNAVAILABLE.

        Args:
            count: How many.
        """
        self._list_failures = count

    def fail_next_stream(self, error: BaseException) -> None:
        """Make the next stream raise `error` when it is first read.

        Args:
            error: What to raise.
        """
        self._next_stream_error = error

    def push_event(
        self,
        event: Event,
        dispatch: Dispatch,
        microgrid_id: MicrogridId | None = None,
    ) -> None:
        """Put an event on the open streams; the stored dispatches are untouched.

        Args:
            event: The event kind.
            dispatch: The dispatch version to send.
            microgrid_id: Only streams of this microgrid; None for all.
        """
        self.push_raw(
            StreamMicrogridDispatchesResponse(
                event=event.value, dispatch=dispatch.to_protobuf()
            ),
            microgrid_id,
        )

    def push_raw(
        self,
        response: StreamMicrogridDispatchesResponse,
        microgrid_id: MicrogridId | None = None,
    ) -> None:
        """Put a raw protobuf message on the open streams.

        Args:
            response: The message.
            microgrid_id: Only streams of this microgrid; None for all.
        """
        for stream in self._streams:
            if microgrid_id is None or stream.microgrid_id == microgrid_id:
                stream.queue.put_nowait(response)
                self.pushed += 1

    # The stub methods the scheduler calls

    async def ListMicrogridDispatches(
        self,
        request: ListMicrogridDispatchesRequest,
        timeout: int = 5,
    ) -> ListMicrogridDispatchesResponse:
        """List dispatches, honouring pagination and injected failures."""
        self._record("list", timeout)
        if not self.connected:
            raise unavailable()
        if self._list_failures > 0:
            self._list_failures -= 1
            raise unavailable("list failed")
        everything = await super().ListMicrogridDispatches(request, timeout)
        dispatches = [*everything.dispatches, *self.extra_list_dispatches]
        offset = int(request.pagination_params.page_token or 0)
        size = request.pagination_params.page_size or len(dispatches) or 1
        if self.page_size is not None:
            size = min(size, self.page_size)
        page = dispatches[offset : offset + size]
        following = offset + size
        response = ListMicrogridDispatchesResponse(
            dispatches=page,
            pagination_info=PaginationInfo(
                total_items=len(dispatches),
                next_page_token=str(following) if following < len(dispatches) else None,
            ),
        )
        if self.after_list is not None:
            await self.after_list()
        return response

    def StreamMicrogridDispatches(
        self,
        request: StreamMicrogridDispatchesRequest,
        timeout: int | None = 5,
    ) -> AsyncIterator[StreamMicrogridDispatchesResponse]:
        """Open a stream; it subscribes once it is first read."""
        self._record("stream", timeout)
        error, self._next_stream_error = self._next_stream_error, None
        if not self.connected:
            error = unavailable()
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stream = self._stream(MicrogridId(request.microgrid_id), error, confirmed)
        if self.call_style == "generator":
            return stream
        return _Call(stream, confirmed)

    # Internals

    async def _stream(
        self,
        microgrid_id: MicrogridId,
        error: BaseException | None,
        confirmed: asyncio.Future[None],
    ) -> AsyncIterator[StreamMicrogridDispatchesResponse]:
        if self.subscribe_delay > timedelta(0):
            await asyncio.sleep(self.subscribe_delay.total_seconds())
        if error is not None:
            raise error
        stream = _Stream(microgrid_id)
        self._streams.append(stream)
        self._record("subscribed")
        if self.call_style != "lazy":
            confirmed.set_result(None)
        try:
            if self.on_subscribe is not None:
                await self.on_subscribe()
            while True:
                item = await stream.queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                if not confirmed.done():
                    confirmed.set_result(None)
                yield item
        finally:
            if stream in self._streams:
                self._streams.remove(stream)

    def _end_all(self, end: _End) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            stream.queue.put_nowait(end)

    def _record(self, kind: str, timeout: float | None = None) -> None:
        self.calls.append(Call(kind, datetime.now(tz=timezone.utc), timeout))


class ControllableClient(FakeClient):
    """A `FakeClient` backed by a `ControllableService`."""

    def __init__(self) -> None:
        super().__init__()
        self._stuba = ControllableService()

    @property
    def stub(self) -> ControllableService:  # type: ignore[override]
        """The fake service."""
        return self.service

    @property
    def service(self) -> ControllableService:
        """The fake service, to control it."""
        assert isinstance(self._stuba, ControllableService)
        return self._stuba
