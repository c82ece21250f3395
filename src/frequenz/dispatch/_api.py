# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""What the engine needs of a Dispatch API client, and nothing more.

The engine talks to the raw frequenz-client-dispatch `DispatchApiClient` (or the
`FakeClient` it ships for tests): its gRPC stub, its call timeout and its URL.
The lenient `DispatchClient` wrapper is only what users get from
`Dispatcher.client`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from frequenz.api.dispatch.v1.dispatch_pb2 import (
    ListMicrogridDispatchesResponse,
    StreamMicrogridDispatchesResponse,
)


class DispatchStub(Protocol):
    """The two calls of the Dispatch API's gRPC stub the engine makes."""

    @property
    def ListMicrogridDispatches(
        self,
    ) -> Callable[..., Awaitable[ListMicrogridDispatchesResponse]]:
        """List one page of a microgrid's dispatches."""

    @property
    def StreamMicrogridDispatches(
        self,
    ) -> Callable[..., AsyncIterable[StreamMicrogridDispatchesResponse]]:
        """Open the update stream of a microgrid's dispatches."""


class DispatchApi(Protocol):
    """The client surface the engine uses (a `DispatchApiClient` has it)."""

    @property
    def stub(self) -> DispatchStub:
        """The gRPC stub."""

    @property
    def call_timeout(self) -> timedelta:
        """The deadline of each unary call."""

    @property
    def server_url(self) -> str:
        """The service's URL, for logs and error messages."""


class StreamCall(AsyncIterator[StreamMicrogridDispatchesResponse]):
    """An update stream as the engine handles it: a gRPC call's interface.

    A real gRPC call already is one; `StreamCall.of` adapts a stub that returns a
    plain async iterator (the client's `FakeClient`): such a stream subscribes when
    it is first iterated, so its subscription counts as confirmed once the reader
    has taken its first step.
    """

    def __init__(
        self, stream: AsyncIterable[StreamMicrogridDispatchesResponse]
    ) -> None:
        """Adapt a plain async iterable.

        Args:
            stream: The stream.
        """
        self._iterator = aiter(stream)
        self._started = asyncio.Event()

    @staticmethod
    def of(call: AsyncIterable[StreamMicrogridDispatchesResponse]) -> Any:
        """Return `call` if it is a gRPC call, else the call interface around it.

        Args:
            call: What the stub's `StreamMicrogridDispatches` returned.

        Returns:
            An object with `__aiter__`, `initial_metadata()` and `cancel()`.
        """
        if callable(getattr(call, "initial_metadata", None)) and callable(
            getattr(call, "cancel", None)
        ):
            return call
        return StreamCall(call)

    async def __anext__(self) -> StreamMicrogridDispatchesResponse:
        """Return the next message of the stream.

        Returns:
            The message.
        """
        self._started.set()
        return await anext(self._iterator)

    async def initial_metadata(self) -> tuple[()]:
        """Wait until the stream is subscribed, as a gRPC call's headers do.

        Returns:
            No metadata.
        """
        await self._started.wait()
        # The first step runs up to the stream's first wait: let it get there.
        await asyncio.sleep(0)
        return ()

    def cancel(self) -> bool:
        """Stop the stream.

        Returns:
            True, as a gRPC call that was cancelled.
        """
        # Cancelling the task that iterates ends a plain iterator: nothing to do.
        return True
