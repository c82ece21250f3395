# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`TunedDispatchApiClient` builds its channel with the library's options.

frequenz-client-base (0.11) and frequenz-client-dispatch (1.1) take no gRPC
channel options besides keep-alive, so the client wraps client-base's channel
constructors during `connect()`. These tests record what the constructors get:
if client-base ever builds its channel another way, they fail instead of the
options silently no longer applying; and a loopback server sends a page over
gRPC's default 4 MiB receive limit. They build real grpc.aio channels, hence a
real event loop (this folder).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import frequenz.client.base.channel as base_channel
import grpc
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    ListMicrogridDispatchesRequest,
    ListMicrogridDispatchesResponse,
)
from frequenz.client.dispatch import DispatchApiClient

from frequenz.dispatch._client import (
    CHANNEL_OPTIONS,
    MAX_RECEIVE_MESSAGE_BYTES,
    TunedDispatchApiClient,
)


class Recorder:
    """Wraps a real channel constructor and records the options it was given."""

    def __init__(self, constructor: Callable[..., Any], index: int) -> None:
        self._constructor = constructor
        self._index = index
        self.options: list[list[tuple[str, Any]] | None] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Record, then build the real channel."""
        given = args[self._index] if len(args) > self._index else kwargs["options"]
        self.options.append(None if given is None else list(given))
        return self._constructor(*args, **kwargs)


@pytest.fixture
def insecure(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record what client-base's `insecure_channel` gets."""
    recorder = Recorder(vars(base_channel)["insecure_channel"], 1)
    monkeypatch.setattr(base_channel, "insecure_channel", recorder)
    return recorder


@pytest.fixture
def secure(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record what client-base's `secure_channel` gets."""
    recorder = Recorder(vars(base_channel)["secure_channel"], 2)
    monkeypatch.setattr(base_channel, "secure_channel", recorder)
    return recorder


def _names(options: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in options]


async def test_the_options_reach_the_channel_and_keep_alive_is_kept(
    insecure: Recorder,
) -> None:
    client = TunedDispatchApiClient(
        server_url="grpc://127.0.0.1:1?ssl=false&keep_alive_interval_s=7",
        auth_key="key",
    )
    try:
        [options] = insecure.options
        assert options is not None
        assert set(CHANNEL_OPTIONS) <= set(options)
        assert ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES) in (
            options
        )
        assert ("grpc.max_reconnect_backoff_ms", 1000) in options
        # client-base's own keep-alive options (here from the URL) stay.
        assert ("grpc.keepalive_time_ms", 7000) in options
        assert len(_names(options)) == len(set(_names(options)))
    finally:
        await client.disconnect()


async def test_the_options_reach_a_secure_channel(secure: Recorder) -> None:
    client = TunedDispatchApiClient(server_url="grpc://127.0.0.1:1", auth_key="key")
    try:
        [options] = secure.options
        assert options is not None
        assert set(CHANNEL_OPTIONS) <= set(options)
        assert "grpc.keepalive_time_ms" in _names(options)
    finally:
        await client.disconnect()


async def test_the_options_reach_a_channel_without_keep_alive(
    insecure: Recorder,
) -> None:
    # client-base passes no options at all then (None).
    client = TunedDispatchApiClient(
        server_url="grpc://127.0.0.1:1?ssl=false&keep_alive=false", auth_key="key"
    )
    try:
        assert insecure.options == [list(CHANNEL_OPTIONS)]
    finally:
        await client.disconnect()


async def test_the_constructors_are_restored_after_connect(
    insecure: Recorder,
) -> None:
    tuned = TunedDispatchApiClient(
        server_url="grpc://127.0.0.1:1?ssl=false", auth_key="key"
    )
    assert vars(base_channel)["insecure_channel"] is insecure
    # Other clients of client-base in the same process keep their own options.
    plain = DispatchApiClient(server_url="grpc://127.0.0.1:1?ssl=false", auth_key="key")
    try:
        assert insecure.options[1] is not None
        assert "grpc.max_receive_message_length" not in _names(insecure.options[1])
    finally:
        await tuned.disconnect()
        await plain.disconnect()


async def test_the_constructors_are_restored_when_connect_fails(
    insecure: Recorder,
) -> None:
    with pytest.raises(ValueError):
        TunedDispatchApiClient(server_url="grpc://127.0.0.1:1?bogus=1", auth_key="k")
    assert vars(base_channel)["insecure_channel"] is insecure


# The receive limit, on a real channel

PAGE_BYTES = 5 * 1024 * 1024
"""Over gRPC's default receive limit (4 MiB), far under ours."""


class _BigPageServicer(dispatch_pb2_grpc.MicrogridDispatchServiceServicer):
    async def ListMicrogridDispatches(
        self, request: ListMicrogridDispatchesRequest, context: Any
    ) -> ListMicrogridDispatchesResponse:
        del context
        page = ListMicrogridDispatchesResponse()
        dispatch = page.dispatches.add()
        dispatch.metadata.dispatch_id = 1
        dispatch.data.type = "x" * PAGE_BYTES
        return page


@pytest.fixture
async def big_page_server() -> AsyncIterator[str]:
    """A loopback server whose list page is 5 MiB; yields its URL."""
    server = grpc.aio.server()
    # The other calls keep the generated servicer's UNIMPLEMENTED answers.
    servicer = _BigPageServicer()  # type: ignore[abstract]
    dispatch_pb2_grpc.add_MicrogridDispatchServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"grpc://127.0.0.1:{port}?ssl=false"
    finally:
        await server.stop(None)


async def _list_page(client: DispatchApiClient) -> ListMicrogridDispatchesResponse:
    response: ListMicrogridDispatchesResponse = (
        await client.stub.ListMicrogridDispatches(
            ListMicrogridDispatchesRequest(microgrid_id=1), timeout=10
        )
    )
    return response


async def test_a_page_over_the_default_receive_limit_is_received(
    big_page_server: str,
) -> None:
    timeout = timedelta(seconds=10)
    plain = DispatchApiClient(
        server_url=big_page_server, auth_key="key", call_timeout=timeout
    )
    tuned = TunedDispatchApiClient(
        server_url=big_page_server, auth_key="key", call_timeout=timeout
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _list_page(plain)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        page = await _list_page(tuned)
        assert len(page.dispatches[0].data.type) == PAGE_BYTES
    finally:
        await plain.disconnect()
        await tuned.disconnect()
