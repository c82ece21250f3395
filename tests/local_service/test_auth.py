# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""API key and HMAC signature checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import grpc.aio
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch.local_service import LocalDispatchService
from frequenz.dispatch.local_service._auth import AuthInterceptor, NonceCache

from .conftest import KEY, MICROGRID, TIMEOUT, in_future, make_client, rpc_error

SECRET = "test-signing-secret-9876"
LIST = "/frequenz.api.dispatch.v1.MicrogridDispatchService/ListMicrogridDispatches"


def signed_metadata(
    *,
    key: str = KEY,
    secret: str = SECRET,
    ts: int | None = None,
    nonce: str | None = None,
    method: str = "ListMicrogridDispatches",
) -> tuple[tuple[str, str], ...]:
    """Metadata signed the way frequenz-client-base signs requests."""
    ts_text = str(int(time.time()) if ts is None else ts)
    nonce_text = nonce or base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for part in (key, ts_text, nonce_text, method):
        mac.update(part.encode())
    sig = base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
    return (("key", key), ("ts", ts_text), ("nonce", nonce_text), ("sig", sig))


@pytest.fixture
async def signed_service() -> AsyncIterator[LocalDispatchService]:
    """A service that requires signed requests."""
    async with LocalDispatchService(key=KEY, sign_secret=SECRET) as service:
        yield service


@pytest.fixture
async def signed_stub(
    signed_service: LocalDispatchService,
) -> AsyncIterator[dispatch_pb2_grpc.MicrogridDispatchServiceAsyncStub]:
    """A raw stub for `signed_service`."""
    target = f"127.0.0.1:{signed_service.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        yield dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)


LIST_REQUEST = pb.ListMicrogridDispatchesRequest(microgrid_id=int(MICROGRID))


@pytest.mark.parametrize("key", ["wrong-key", KEY + "x", KEY[:-1]])
async def test_wrong_key_is_unauthenticated(
    service: LocalDispatchService, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(service, auth_key=key)
    try:
        error = await rpc_error(client.list(MICROGRID).__anext__())
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        stream_error = await rpc_error(
            client.stub.StreamMicrogridDispatches(
                pb.StreamMicrogridDispatchesRequest(microgrid_id=1)
            ).read()
        )
        assert stream_error.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await client.disconnect()
    assert KEY not in caplog.text
    assert KEY not in (error.details() or "")


async def test_missing_key_is_unauthenticated(service: LocalDispatchService) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)
        error = await rpc_error(stub.ListMicrogridDispatches(LIST_REQUEST))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing API key" in (error.details() or "")


async def test_signing_client_works(signed_service: LocalDispatchService) -> None:
    client = make_client(signed_service, sign_secret=SECRET)
    try:
        receiver = client.stream(MICROGRID)
        async with asyncio.timeout(TIMEOUT):
            await signed_service.wait_for_subscribers(int(MICROGRID))
        created = await client.create(
            MICROGRID, "SIGNED", in_future(), timedelta(minutes=1), TargetIds(1)
        )
        assert [d async for page in client.list(MICROGRID) for d in page] == [created]
        async with asyncio.timeout(TIMEOUT):
            assert (await receiver.receive()).dispatch == created
    finally:
        await client.disconnect()


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_unsigned_or_badly_signed_is_unauthenticated(
    signed_service: LocalDispatchService, secret: str | None
) -> None:
    client = make_client(signed_service, sign_secret=secret)
    try:
        error = await rpc_error(client.list(MICROGRID).__anext__())
    finally:
        await client.disconnect()
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert SECRET not in (error.details() or "")


async def test_replayed_nonce_is_rejected(
    signed_stub: dispatch_pb2_grpc.MicrogridDispatchServiceAsyncStub,
) -> None:
    metadata = signed_metadata()
    await signed_stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
    error = await rpc_error(
        signed_stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "replayed" in (error.details() or "")
    # A fresh nonce passes again.
    await signed_stub.ListMicrogridDispatches(LIST_REQUEST, metadata=signed_metadata())


@pytest.mark.parametrize("offset", [-3600, +3600])
async def test_stale_timestamp_is_rejected(
    signed_stub: dispatch_pb2_grpc.MicrogridDispatchServiceAsyncStub, offset: int
) -> None:
    metadata = signed_metadata(ts=int(time.time()) + offset)
    error = await rpc_error(
        signed_stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "stale" in (error.details() or "")


@pytest.mark.parametrize(
    "metadata",
    [
        # Signed for another method.
        signed_metadata(method="DeleteMicrogridDispatch"),
        # Signed with another key than the one sent.
        (*signed_metadata(key="other")[1:], ("key", KEY)),
        # Missing signature parts.
        (("key", KEY), ("ts", str(int(time.time())))),
        # Timestamp that is not a number.
        (("key", KEY), ("ts", "soon"), ("nonce", "n"), ("sig", "s")),
    ],
)
async def test_bad_signatures_are_rejected(
    signed_stub: dispatch_pb2_grpc.MicrogridDispatchServiceAsyncStub,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    error = await rpc_error(
        signed_stub.ListMicrogridDispatches(LIST_REQUEST, metadata=metadata)
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_interceptor_window_and_nonce_expiry() -> None:
    now = [1_000_000.0]
    interceptor = AuthInterceptor(
        KEY, SECRET, signature_window=60, clock=lambda: now[0]
    )
    metadata = signed_metadata(ts=int(now[0]) - 59, nonce="fixed")
    assert interceptor.check(LIST, metadata) is None
    assert interceptor.check(LIST, metadata) == "replayed request nonce"
    now[0] += 2  # The request's timestamp is now outside the window.
    assert interceptor.check(LIST, metadata) == "stale request timestamp"


def test_nonce_cache_forgets_expired_nonces() -> None:
    cache = NonceCache()
    assert cache.add("a", expires_at=10, now=0)
    assert cache.add("b", expires_at=20, now=0)
    assert not cache.add("a", expires_at=10, now=5)
    assert cache.add("c", expires_at=30, now=15)  # Forgets "a".
    assert len(cache) == 2
    assert cache.add("a", expires_at=40, now=15)


async def test_generated_key_when_none_given() -> None:
    async with LocalDispatchService() as service:
        assert len(service.key) >= 20
        client = make_client(service)
        try:
            assert [p async for p in client.list(MICROGRID)] != []
        finally:
            await client.disconnect()
    assert service.key not in repr(service)
