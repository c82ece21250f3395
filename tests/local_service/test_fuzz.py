# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Fuzzing every RPC: only documented status codes, and the service keeps serving.

Each of the six RPCs gets `EXAMPLES` (1,000) requests through the real gRPC
stub, 6,000 in all: random bytes, structured requests with extreme values
(ids up to 2^64 - 1, any timestamp, NaN and infinite payload numbers, long
types, garbage page tokens), the same serialized and then mutated (bytes
flipped, inserted, cut off), and payloads nested deeper than protobuf parses.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .threaded import service_in_thread

EXAMPLES = 1000
"""Requests per RPC; six RPCs, so 6,000 requests per run."""

KEY = "fuzz-key-0123456789"
SERVICE = "/frequenz.api.dispatch.v1.MicrogridDispatchService/"
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
}
"""Every code a request with the right key may get (see `_servicer`)."""

_U64 = 2**64 - 1
ids = st.one_of(
    st.integers(0, 3),
    st.sampled_from([2**63 - 1, 2**63, _U64]),
    st.integers(0, _U64),
)
int64s = st.integers(-(2**63), 2**63 - 1)
timestamps = st.one_of(
    st.integers(1_700_000_000, 1_900_000_000),
    st.sampled_from([-62_135_596_801, 253_402_300_799, 253_402_300_800]),
    int64s,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**53), 2**53)
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
uint32s = st.integers(0, 2**32 - 1)


@st.composite
def dispatch_data(draw: st.DrawFn, message: Any) -> None:
    """Fill a `DispatchData` or `DispatchUpdate` with arbitrary values."""
    if hasattr(message, "type"):
        message.type = draw(st.text(max_size=300))
        message.is_dry_run = draw(st.booleans())
    if draw(st.booleans()):
        message.start_time.seconds = draw(timestamps)
        message.start_time.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        message.duration = draw(uint32s)
    message.is_active = draw(st.booleans())
    match draw(st.integers(0, 3)):
        case 0:
            message.target.component_ids.ids.extend(draw(st.lists(ids, max_size=5)))
        case 1:
            message.target.component_categories.categories.extend(
                draw(st.lists(st.integers(0, 20), max_size=3))
            )
        case 2:
            entry = message.target.component_categories_types.categories.add()
            entry.category = draw(st.integers(0, 20))
            if draw(st.booleans()):
                entry.battery = draw(st.integers(0, 10))
        case _:
            pass
    payload = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
    message.payload.update(payload)
    rule = message.recurrence
    rule.freq = draw(st.integers(0, 8))
    rule.interval = draw(uint32s)
    if draw(st.booleans()):
        if draw(st.booleans()):
            rule.end_criteria.count = draw(uint32s)
        else:
            rule.end_criteria.until_time.seconds = draw(timestamps)
    for name in ("byminutes", "byhours", "bymonths"):
        getattr(rule, name).extend(draw(st.lists(uint32s, max_size=3)))
    rule.byweekdays.extend(draw(st.lists(st.integers(0, 9), max_size=3)))
    rule.bymonthdays.extend(draw(st.lists(st.integers(-40, 40), max_size=3)))


@st.composite
def page_tokens(draw: st.DrawFn) -> str:
    """Garbage, and JSON nested far too deep, base64-encoded or not."""
    import base64

    depth = draw(st.integers(0, 100_000))
    raw = draw(
        st.one_of(
            st.binary(max_size=60),
            st.just(b"[" * depth + b"]" * depth),
            st.just(b'{"v":1,"after":[1,' + b"9" * 5000 + b'],"size":1,"query":""}'),
        )
    )
    if draw(st.booleans()):
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return raw.decode("latin-1")


@st.composite
def structured(draw: st.DrawFn, method: str) -> bytes:
    """A request of `method` with arbitrary field values, serialized."""
    request: Any
    match method:
        case "CreateMicrogridDispatch":
            request = pb.CreateMicrogridDispatchRequest(microgrid_id=draw(ids))
            request.start_immediately = draw(st.booleans())
            draw(dispatch_data(request.dispatch_data))
        case "UpdateMicrogridDispatch":
            request = pb.UpdateMicrogridDispatchRequest(
                microgrid_id=draw(ids), dispatch_id=draw(ids)
            )
            paths = st.sampled_from(
                [
                    "start_time",
                    "duration",
                    "target",
                    "payload",
                    "recurrence",
                    "recurrence.interval",
                    "is_active",
                    "type",
                    "bogus",
                    "",
                ]
            )
            request.update_mask.paths.extend(draw(st.lists(paths, max_size=4)))
            draw(dispatch_data(request.update))
        case "ListMicrogridDispatches":
            request = pb.ListMicrogridDispatchesRequest(microgrid_id=draw(ids))
            request.filter.dispatch_ids.extend(draw(st.lists(ids, max_size=3)))
            request.filter.queries.extend(
                draw(st.lists(st.text(max_size=5) | st.just("#" + "9" * 5000)))
            )
            if draw(st.booleans()):
                request.filter.start_time_interval.start_time.seconds = draw(int64s)
            request.sort_options.sort_field = draw(st.integers(0, 5))
            request.sort_options.sort_order = draw(st.integers(0, 4))
            request.pagination_params.page_size = draw(uint32s)
            if draw(st.booleans()):
                request.pagination_params.page_token = draw(page_tokens())
        case "StreamMicrogridDispatches":
            request = pb.StreamMicrogridDispatchesRequest(microgrid_id=draw(ids))
        case _:
            request_type = {
                "GetMicrogridDispatch": pb.GetMicrogridDispatchRequest,
                "DeleteMicrogridDispatch": pb.DeleteMicrogridDispatchRequest,
            }[method]
            request = request_type(microgrid_id=draw(ids), dispatch_id=draw(ids))
    data: bytes = request.SerializeToString()
    return data


def deep_payload_request(depth: int) -> bytes:
    """A create request whose payload nests `depth` structs: beyond parsing."""
    struct = b""
    for _ in range(depth):
        # Struct{fields: {"a": Value{struct_value: struct}}}
        value = b"\x2a" + _varint(len(struct)) + struct
        entry = b"\x0a\x01a\x12" + _varint(len(value)) + value
        struct = b"\x0a" + _varint(len(entry)) + entry
    data = b"\x0a\x01T\x3a" + _varint(len(struct)) + struct  # type, payload
    return b"\x08\x01\x12" + _varint(len(data)) + data  # microgrid 1, data


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


@st.composite
def requests(draw: st.DrawFn, method: str) -> bytes:
    """Random, structured, mutated or too deeply nested request bytes."""
    kind = draw(st.sampled_from(["random", "structured", "mutated", "deep"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return deep_payload_request(draw(st.integers(90, 300)))
    data = bytearray(draw(structured(method)))
    if kind == "mutated" and data:
        for _ in range(draw(st.integers(1, 4))):
            index = draw(st.integers(0, len(data) - 1))
            match draw(st.integers(0, 2)):
                case 0:
                    data[index] = draw(st.integers(0, 255))
                case 1:
                    data[index:index] = draw(st.binary(min_size=1, max_size=4))
                case _:
                    del data[index:]
            if not data:
                break
    return bytes(data)


def _call(channel: grpc.Channel, method: str, body: bytes) -> grpc.StatusCode:
    metadata = (("key", KEY),)
    if method == "StreamMicrogridDispatches":
        # No serializers: the body goes as it is, the answer stays bytes.
        call: Any = channel.unary_stream(SERVICE + method, None, None)(
            body, metadata=metadata, timeout=10
        )
        call.initial_metadata()
        # A refused stream ends with its status at once (trailers only); an
        # accepted one stays open until cancelled.
        call.cancel()
        code: grpc.StatusCode = call.code()
        return grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED else code
    try:
        channel.unary_unary(SERVICE + method, None, None)(
            body, metadata=metadata, timeout=10
        )
    except grpc.RpcError as error:
        failed: Any = error  # Also a grpc.Call, which the stubs do not tell.
        return failed.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


METHODS = [
    "CreateMicrogridDispatch",
    "UpdateMicrogridDispatch",
    "GetMicrogridDispatch",
    "DeleteMicrogridDispatch",
    "ListMicrogridDispatches",
    "StreamMicrogridDispatches",
]


@pytest.mark.parametrize("method", METHODS)
def test_fuzzed_requests_get_documented_codes(method: str) -> None:
    with service_in_thread(key=KEY) as service:
        target = f"127.0.0.1:{service.port}"
        with grpc.insecure_channel(target) as channel:
            seen: dict[grpc.StatusCode, int] = {}

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                ],
                database=None,
            )
            @given(body=requests(method))
            def check(body: bytes) -> None:
                code = _call(channel, method, body)
                seen[code] = seen.get(code, 0) + 1
                assert code in DOCUMENTED, (code, body[:200])

            check()
            # Still serving, and not only refusals were tried.
            stub = dispatch_pb2_grpc.MicrogridDispatchServiceStub(channel)
            stub.ListMicrogridDispatches(
                pb.ListMicrogridDispatchesRequest(microgrid_id=1),
                metadata=(("key", KEY),),
                timeout=10,
            )
    assert sum(seen.values()) >= EXAMPLES
    assert grpc.StatusCode.INVALID_ARGUMENT in seen
