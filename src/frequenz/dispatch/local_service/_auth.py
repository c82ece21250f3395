# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Server-side check of the credentials sent by `frequenz-client-base`.

The client sends its API key in the `key` metadata entry. With a signing
secret it also sends `ts` (UNIX seconds), `nonce` (URL-safe base64 of random
bytes) and `sig`: the URL-safe base64, without padding, of
HMAC-SHA256(secret, key + ts + nonce + method name), where the method name is
the last segment of the RPC path, e.g. `ListMicrogridDispatches`.

Keys and secrets are never logged; rejection reasons name only what was wrong,
and at most once per client per interval (`_rejections`). Accepted nonces are
persisted with the data (`NonceStore`), so a restart within the window does
not let a recorded request be replayed. Every rejection is UNAUTHENTICATED,
including timestamps that are no plain decimal of at most
`MAX_TIMESTAMP_DIGITS` digits and nonces longer than `MAX_NONCE_LENGTH`.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import grpc
import grpc.aio

from ._rejections import DEFAULT_LOG_INTERVAL, RejectionLog, client_of

_logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE_WINDOW = 300.0
"""Default accepted clock difference for signed requests, in seconds."""

MAX_TIMESTAMP_DIGITS = 12
"""Longest accepted `ts` (UNIX seconds reach 12 digits in the year 33658)."""

MAX_NONCE_LENGTH = 256
"""Longest accepted `nonce`; the client sends 24 characters."""


class NonceStore(Protocol):
    """Where accepted nonces are kept across restarts."""

    async def remember(self, nonce: str, expires_at: float, now: float) -> None:
        """Persist an accepted nonce, forgetting those expired by `now`.

        Args:
            nonce: The nonce.
            expires_at: When it may be forgotten, in UNIX seconds.
            now: The current time, in UNIX seconds.
        """


class NonceCache:
    """Remembers nonces until their timestamp leaves the accepted window."""

    def __init__(self) -> None:
        """Create an empty cache."""
        self._expiry: dict[str, float] = {}

    def __len__(self) -> int:
        """Count the remembered nonces.

        Returns:
            The number of nonces.
        """
        return len(self._expiry)

    def add(self, nonce: str, expires_at: float, now: float) -> bool:
        """Remember a nonce unless it is already known.

        Args:
            nonce: The nonce.
            expires_at: When it may be forgotten, in UNIX seconds; after that
                its request is rejected as stale anyway.
            now: The current time, in UNIX seconds.

        Returns:
            `False` if the nonce was already known (a replay), `True` otherwise.
        """
        # Dicts keep insertion order, and expiries are roughly increasing, so
        # pruning from the front is cheap and bounds memory by the window.
        for old_nonce, old_expiry in list(self._expiry.items()):
            if old_expiry > now:
                break
            del self._expiry[old_nonce]
        if nonce in self._expiry and self._expiry[nonce] > now:
            return False
        self._expiry[nonce] = expires_at
        return True

    def preload(self, nonces: Iterable[tuple[str, float]]) -> None:
        """Remember nonces accepted before (e.g. before a restart).

        Args:
            nonces: `(nonce, expires_at)` pairs, by increasing expiry.
        """
        for nonce, expires_at in nonces:
            self._expiry[nonce] = expires_at


def _metadata_value(metadata: Sequence[Any] | None, name: str) -> str | None:
    """Get the first metadata entry with a given name, as text."""
    for entry in metadata or ():
        key, value = entry[0], entry[1]
        if key == name:
            if isinstance(value, bytes):
                return value.decode("ascii", "replace")
            return str(value)
    return None


def _malformed(ts: str, nonce: str) -> str | None:
    """Tell what is wrong with the form of a timestamp or nonce, if anything."""
    # ASCII digits only (`isdigit()` also takes "²", which `int()` refuses),
    # and few enough that the arithmetic with them stays in float range.
    if not (ts.isascii() and ts.isdigit() and len(ts) <= MAX_TIMESTAMP_DIGITS):
        return "invalid request timestamp"
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        return "invalid request nonce"
    return None


def signature(secret: str, key: str, ts: str, nonce: str, method: str) -> str:
    """Compute the request signature exactly like the client does.

    Args:
        secret: The shared signing secret.
        key: The API key sent with the request.
        ts: The timestamp, as sent (decimal UNIX seconds).
        nonce: The nonce, as sent.
        method: The full RPC path, e.g. `/pkg.Service/Method`.

    Returns:
        The URL-safe base64 signature without padding.
    """
    mac = hmac.new(secret.encode(), digestmod="sha256")
    for part in (key, ts, nonce, method.rsplit("/", maxsplit=1)[-1]):
        mac.update(part.encode())
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Rejects calls without the right key (and, if set up, signature)."""

    def __init__(
        self,
        key: str,
        sign_secret: str | None = None,
        *,
        signature_window: float = DEFAULT_SIGNATURE_WINDOW,
        clock: Callable[[], float] = time.time,
        nonce_store: NonceStore | None = None,
        rejections: RejectionLog | None = None,
    ) -> None:
        """Create an interceptor.

        Args:
            key: The API key clients must send.
            sign_secret: If set, requests must be signed with this secret.
            signature_window: How far, in seconds, a signed request's timestamp
                may be from the server clock.
            clock: Returns the current UNIX time in seconds.
            nonce_store: Where accepted nonces are persisted; memory only if
                `None`.
            rejections: Where rejected calls are logged; a `RejectionLog` with
                the default interval if `None`.
        """
        self._key = key
        self._sign_secret = sign_secret
        self._window = signature_window
        self._clock = clock
        self._nonces = NonceCache()
        self._nonce_store = nonce_store
        self._rejections = rejections or RejectionLog(
            _logger, interval=DEFAULT_LOG_INTERVAL
        )

    @property
    def nonces(self) -> NonceCache:
        """The nonces of the current window (to preload after a restart)."""
        return self._nonces

    @property
    def rejections(self) -> RejectionLog:
        """Where rejected calls are logged."""
        return self._rejections

    def check(self, method: str, metadata: Sequence[Any] | None) -> str | None:
        """Check the credentials of a call.

        Args:
            method: The full RPC path.
            metadata: The invocation metadata, as `(key, value)` pairs.

        Returns:
            Why the call is rejected, or `None` if it is allowed.
        """
        return self._verify(method, metadata)[0]

    def _verify(
        self, method: str, metadata: Sequence[Any] | None
    ) -> tuple[str | None, tuple[str, float, float] | None]:
        """Check a call; also return the accepted `(nonce, expiry, now)`, if any."""
        key = _metadata_value(metadata, "key")
        if key is None:
            return "missing API key", None
        if not hmac.compare_digest(key.encode(), self._key.encode()):
            return "invalid API key", None
        if self._sign_secret is None:
            return None, None
        return self._check_signature(self._sign_secret, key, method, metadata)

    def _check_signature(
        self, secret: str, key: str, method: str, metadata: Sequence[Any] | None
    ) -> tuple[str | None, tuple[str, float, float] | None]:
        """Check signature, timestamp and nonce; see `_verify()`."""
        ts = _metadata_value(metadata, "ts")
        nonce = _metadata_value(metadata, "nonce")
        sig = _metadata_value(metadata, "sig")
        if ts is None or nonce is None or sig is None:
            return "missing request signature (ts, nonce and sig are required)", None
        if (malformed := _malformed(ts, nonce)) is not None:
            return malformed, None
        # The signature is checked first so that unsigned garbage can neither
        # probe the clock nor fill the nonce cache.
        expected = signature(secret, key, ts, nonce, method)
        if not hmac.compare_digest(sig.rstrip("=").encode(), expected.encode()):
            return "invalid request signature", None
        now = self._clock()
        timestamp = int(ts)
        if abs(now - timestamp) > self._window:
            return "stale request timestamp", None
        expires_at = timestamp + self._window
        if not self._nonces.add(nonce, expires_at, now):
            return "replayed request nonce", None
        return None, (nonce, expires_at, now)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Let authenticated calls through and fail the others.

        Args:
            continuation: Resolves the handler of the call.
            handler_call_details: Method name and metadata of the call.

        Returns:
            The real handler, or one that fails with UNAUTHENTICATED.
        """
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # Unknown method: let gRPC answer UNIMPLEMENTED.
        method = handler_call_details.method
        reason, accepted = self._verify(
            method, handler_call_details.invocation_metadata
        )
        if reason is None:
            if accepted is not None and self._nonce_store is not None:
                try:
                    await self._nonce_store.remember(*accepted)
                except Exception as error:
                    # Without it on disk a restart would accept a replay; the
                    # usual cause is a stopping service (storage closed).
                    _logger.warning("Cannot persist a request nonce: %s", error)
                    return _rejecting_handler(
                        handler,
                        grpc.StatusCode.UNAVAILABLE,
                        "cannot record the request nonce; try again",
                    )
            return handler
        return _rejecting_handler(
            handler,
            grpc.StatusCode.UNAUTHENTICATED,
            reason,
            lambda peer: self._rejections.record(client_of(peer), method, reason),
        )


def _rejecting_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    code: grpc.StatusCode,
    reason: str,
    on_reject: Callable[[str], None] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """Build a handler of the same kind as `handler` that always fails."""

    async def reject(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        # The peer is only known here, not to the interceptor.
        if on_reject is not None:
            on_reject(context.peer())
        await context.abort(code, reason)

    async def reject_stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await reject(request, context)
        yield  # Unreachable; makes this an async generator like stream handlers.

    serializers = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(reject, *serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(reject_stream, *serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(reject, *serializers)
    return grpc.stream_stream_rpc_method_handler(reject_stream, *serializers)
