# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Undecodable requests get INVALID_ARGUMENT instead of an internal error.

gRPC decodes a request before the handler runs, and a decoding failure (bytes
that are no valid message, strings that are no UTF-8, messages nested deeper
than protobuf parses, e.g. a payload of 200 levels) would otherwise end the
call with UNKNOWN and a server-side traceback. This interceptor decodes
leniently and lets the handler refuse what could not be decoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError


class _Undecodable:
    """Stands for a request whose bytes could not be decoded."""

    def __init__(self, error: BaseException) -> None:
        self.reason = str(error) or type(error).__name__


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except (DecodeError, RecursionError, ValueError) as error:
            return _Undecodable(error)

    return deserialize


async def _refuse(
    request: _Undecodable, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"request: cannot be decoded ({request.reason})",
    )


class RequestGuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Answers INVALID_ARGUMENT to requests that cannot be decoded."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap the handler of a unary-request call with a lenient decoder.

        Args:
            continuation: Resolves the handler of the call.
            handler_call_details: Method name and metadata of the call.

        Returns:
            The wrapped handler (or the original one, for streaming requests,
                which this service does not have).
        """
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        deserialize = _lenient(handler.request_deserializer)
        serialize = handler.response_serializer
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary  # The stubs know only sync handlers.

            async def guarded_unary(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                if isinstance(request, _Undecodable):
                    await _refuse(request, context)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                guarded_unary, deserialize, serialize
            )
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def guarded_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                if isinstance(request, _Undecodable):
                    await _refuse(request, context)
                async for response in stream(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                guarded_stream, deserialize, serialize
            )
        return handler
