# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Converting dispatches from the wire, fast.

The client's `Dispatch.from_protobuf` costs about 45 µs per dispatch, most of it
in converting the target, an empty recurrence and an empty payload. At 100,000
dispatches that alone is seconds of sync time, so this converter reuses the
client's own conversion functions but skips the work for the common cases:
targets are immutable frozensets and few distinct ones exist per microgrid, so
they are cached by their wire bytes; empty recurrences and payloads are built
directly. The result equals what the client's converter returns (tested).

Memory: a microgrid's dispatches repeat a few values many times, so the
immutable-in-practice parts are shared between dispatches instead of copied
into each (at 100,000 dispatches this is most of the bytes held):

* type strings are interned;
* targets, recurrence rules and payloads are cached by their wire bytes (an
  empty recurrence and an empty payload are one shared object each), so equal
  values are one object. A `Dispatch` is frozen and its payload is read-only
  by contract: mutating a received payload in place is not supported (it would
  change every dispatch sharing it);
* `update_time` is the `create_time` object when both are equal (a dispatch
  never updated), and top-level payload keys are interned;
* equal instants (start, create, update and end times) and equal durations are
  one object each: dispatches planned together share their start, and
  durations take few distinct values. Looking one up also costs less than
  converting it.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from frequenz.api.dispatch.v1.dispatch_pb2 import Dispatch as PBDispatch
from frequenz.client.base.conversion import to_datetime
from frequenz.client.dispatch.recurrence import RecurrenceRule
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import DispatchId
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

try:
    from frequenz.client.dispatch.types import _target_components_from_protobuf
except ImportError:  # pragma: no cover  # a client release that renamed it
    _target_components_from_protobuf = None  # type: ignore[assignment]

from ._dispatch import Dispatch

_CACHE_SIZE: Final = 4096
"""Distinct values remembered per cache; older ones are simply no longer shared."""

ValueT = TypeVar("ValueT")


class _WireCache(Generic[ValueT]):
    """Converted values by the wire bytes they came from, oldest evicted first."""

    def __init__(self, convert: Callable[[Any], ValueT]) -> None:
        self._convert = convert
        self._values: OrderedDict[bytes, ValueT] = OrderedDict()

    def get(self, pb_message: Any) -> ValueT:
        key: bytes = pb_message.SerializeToString(deterministic=True)
        value = self._values.get(key)
        if value is None:
            value = self._convert(pb_message)
            self._values[key] = value
            if len(self._values) > _CACHE_SIZE:
                self._values.popitem(last=False)
        return value


def _payload_from_protobuf(pb_payload: Any) -> dict[str, Any]:
    payload: dict[str, Any] = MessageToDict(pb_payload)
    return {sys.intern(key): value for key, value in payload.items()}


class _Shared(Generic[ValueT]):
    """Immutable values by a small key, so that equal ones are one object.

    Forgets everything once full, which costs less per lookup than tracking
    the oldest: values only stop being shared, they never change.
    """

    def __init__(self) -> None:
        self.values: dict[int, ValueT] = {}

    def add(self, key: int, value: ValueT) -> ValueT:
        if len(self.values) >= _CACHE_SIZE:
            self.values.clear()
        self.values[key] = value
        return value


_instants: _Shared[datetime] = _Shared()
_durations: _Shared[timedelta] = _Shared()


def _instant(timestamp: Timestamp) -> datetime:
    key = timestamp.seconds * 1_000_000_000 + timestamp.nanos
    instant = _instants.values.get(key)
    if instant is None:
        instant = _instants.add(key, to_datetime(timestamp))
    return instant


def _duration(seconds: int) -> timedelta:
    duration = _durations.values.get(seconds)
    if duration is None:
        duration = _durations.add(seconds, timedelta(seconds=seconds))
    return duration


_targets = _WireCache(_target_components_from_protobuf)
_recurrences = _WireCache(RecurrenceRule.from_protobuf)
_payloads = _WireCache(_payload_from_protobuf)
_EMPTY_RECURRENCE: Final = RecurrenceRule()
_EMPTY_PAYLOAD: Final[dict[str, Any]] = {}


def dispatch_from_protobuf(pb_dispatch: PBDispatch) -> Dispatch:
    """Convert a protobuf dispatch to a `Dispatch`.

    Args:
        pb_dispatch: The protobuf dispatch.

    Returns:
        The dispatch, equal to `Dispatch(client Dispatch.from_protobuf(...))`.

    Raises:
        ValueError: If a field holds a value this client version cannot represent
            (for example an enum value from a newer server).
    """
    if _target_components_from_protobuf is None:  # pragma: no cover
        # The fast path uses a private helper of the client; should a 1.x
        # release move it, fall back to the client's public converter.
        return Dispatch(ClientDispatch.from_protobuf(pb_dispatch))
    try:
        return _convert(pb_dispatch)
    except Exception as error:
        # Only on failure: convert field by field to name the one at fault.
        raise ValueError(f"field {_culprit(pb_dispatch)}: {error}") from error


def _convert(pb_dispatch: PBDispatch) -> Dispatch:
    metadata = pb_dispatch.metadata
    data = pb_dispatch.data
    recurrence = data.recurrence
    create_time = _instant(metadata.create_time)
    return Dispatch.from_values(
        DispatchId(metadata.dispatch_id),
        sys.intern(data.type),
        _instant(data.start_time),
        _duration(data.duration) if data.HasField("duration") else None,
        _targets.get(data.target),
        data.is_active,
        data.is_dry_run,
        _payloads.get(data.payload) if data.payload.fields else _EMPTY_PAYLOAD,
        _recurrences.get(recurrence) if recurrence.ByteSize() else _EMPTY_RECURRENCE,
        create_time,
        _instant(metadata.update_time),
        _instant(metadata.end_time) if metadata.HasField("end_time") else None,
    )


def _culprit(pb_dispatch: PBDispatch) -> str:
    """Return the name of the first field that fails to convert."""
    metadata = pb_dispatch.metadata
    data = pb_dispatch.data
    checks: tuple[tuple[str, Any], ...] = (
        ("start_time", lambda: to_datetime(data.start_time)),
        ("target", lambda: _target_components_from_protobuf(data.target)),
        ("payload", lambda: MessageToDict(data.payload)),
        ("recurrence", lambda: RecurrenceRule.from_protobuf(data.recurrence)),
        ("create_time", lambda: to_datetime(metadata.create_time)),
        ("update_time", lambda: to_datetime(metadata.update_time)),
        ("end_time", lambda: to_datetime(metadata.end_time)),
    )
    for name, check in checks:
        try:
            check()
        except Exception:
            return name
    return "unknown"
