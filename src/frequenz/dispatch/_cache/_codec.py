# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""One cached dispatch as one row of plain SQLite values, and back.

Decoding the protobuf wire form costs about 30 µs per dispatch (most of it in
`MessageToDict` for the payload and in timestamp conversion), which would make
loading 100,000 cached dispatches take seconds. Each field is therefore stored in
its own column in a form that decodes in a few microseconds: instants and
durations as exact integer microseconds, the payload as JSON, the target and the
recurrence as their protobuf wire bytes (targets are immutable and few per
microgrid, so their decoding is shared). A CRC over the row catches values that
a damaged file would otherwise hand over silently.

Loading reads all rows at once (`decode_all`) and checks every CRC before it
returns anything. Its per-row work is kept to lookups: the text columns arrive as
bytes (the CRC is over those), the payloads are parsed as one JSON array, and a
value that repeats (a recurrence rule, target, type, duration, creation or change
instant) is decoded once per load. Equal recurrence rules are then one shared
object, as targets already were: the client's `RecurrenceRule` is a mutable
dataclass, but the library never changes a dispatch's rule, and a copy per
dispatch would double the load time of recurring dispatches (measured with
`benchmarks/cache_bench.py`). Payloads are mutable dicts users do change, so
each dispatch gets its own.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from frequenz.api.dispatch.v1.dispatch_pb2 import RecurrenceRule as PBRecurrenceRule
from frequenz.api.dispatch.v1.dispatch_pb2 import TargetComponents as PBTarget
from frequenz.client.dispatch.recurrence import RecurrenceRule
from frequenz.client.dispatch.types import DispatchId, TargetComponents

try:
    from frequenz.client.dispatch.types import (
        _target_components_from_protobuf,
        _target_components_to_protobuf,
    )
except ImportError:  # pragma: no cover  # a client release that renamed them
    _target_components_from_protobuf = None  # type: ignore[assignment]
    _target_components_to_protobuf = None  # type: ignore[assignment]

from .._dispatch import Dispatch

Row = tuple[Any, ...]
"""One `dispatches` row, in the order of `COLUMNS`."""

COLUMNS: Final = (
    "id",
    "type",
    "start_us",
    "duration_us",
    "target",
    "active",
    "dry_run",
    "payload",
    "recurrence",
    "create_us",
    "update_us",
    "end_us",
    "crc",
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)
_NONE: Final = -(2**63)
"""Stands for None in the CRC of a nullable integer column."""
_INTEGERS: Final = struct.Struct("<7q")
_EMPTY_PAYLOAD: Final = "{}"
_CACHE_SIZE: Final = 4096


class CorruptRow(ValueError):
    """A row whose values do not form a dispatch: the file is damaged."""


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)


def _crc(row: Row) -> int:
    (
        dispatch_id,
        type_,
        start,
        duration,
        target,
        active,
        dry_run,
        payload,
        recurrence,
        create,
        update,
        end,
    ) = row[:12]
    flags = int(active) | int(dry_run) << 1
    integers = _INTEGERS.pack(
        dispatch_id,
        start,
        _NONE if duration is None else duration,
        flags,
        create,
        update,
        _NONE if end is None else end,
    )
    crc = zlib.crc32(integers)
    crc = zlib.crc32(type_.encode(), crc)
    crc = zlib.crc32(payload.encode(), crc)
    crc = zlib.crc32(target, crc)
    return zlib.crc32(recurrence, crc)


class _Targets:
    """Target conversions both ways, shared: targets are immutable and few."""

    def __init__(self) -> None:
        self._decoded: OrderedDict[bytes, TargetComponents] = OrderedDict()
        self._encoded: OrderedDict[TargetComponents, bytes] = OrderedDict()

    def encode(self, target: TargetComponents) -> bytes:
        wire = self._encoded.get(target)
        if wire is None:
            if _target_components_to_protobuf is None:  # pragma: no cover
                raise RuntimeError("this client cannot convert targets")
            wire = _target_components_to_protobuf(target).SerializeToString(
                deterministic=True
            )
            self._remember(self._encoded, target, wire)
        return wire

    def decode(self, wire: bytes) -> TargetComponents:
        target = self._decoded.get(wire)
        if target is None:
            if _target_components_from_protobuf is None:  # pragma: no cover
                raise RuntimeError("this client cannot convert targets")
            target = _target_components_from_protobuf(PBTarget.FromString(wire))
            self._remember(self._decoded, wire, target)
        return target

    @staticmethod
    def _remember(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        table[key] = value
        if len(table) > _CACHE_SIZE:
            table.popitem(last=False)


_targets = _Targets()


def encode(dispatch: Dispatch) -> Row:
    """Return the row that stores a dispatch.

    Args:
        dispatch: The dispatch, as held by the schedule.

    Returns:
        The row's values, in the order of `COLUMNS`.
    """
    recurrence = dispatch.recurrence
    row: Row = (
        int(dispatch.id),
        dispatch.type,
        _micros(dispatch.start_time),
        None if dispatch.duration is None else dispatch.duration // _MICROSECOND,
        _targets.encode(dispatch.target),
        dispatch.active,
        dispatch.dry_run,
        json.dumps(dispatch.payload) if dispatch.payload else _EMPTY_PAYLOAD,
        (
            recurrence.to_protobuf().SerializeToString(deterministic=True)
            if recurrence != _EMPTY_RULE
            else b""
        ),
        _micros(dispatch.create_time),
        _micros(dispatch.update_time),
        None if dispatch.end_time is None else _micros(dispatch.end_time),
    )
    return (*row, _crc(row))


_EMPTY_RULE: Final = RecurrenceRule()

SELECT: Final = ", ".join(
    f"CAST({name} AS BLOB)" if name in ("type", "payload") else name for name in COLUMNS
)
"""The columns `decode_all` reads, in order: text columns as their UTF-8 bytes.

The CRC is over those bytes, and the payloads are parsed from them in one go, so
reading them as bytes spares two encodes and a decode per row.
"""


class _Memo(dict[Any, Any]):
    """Values made once per distinct key: lookups of known keys run in C."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self._make(key)
        return value


def _rule(wire: bytes) -> RecurrenceRule:
    if not wire:
        return RecurrenceRule()
    return RecurrenceRule.from_protobuf(PBRecurrenceRule.FromString(wire))


def decode_all(rows: list[Row]) -> list[Dispatch]:
    """Return the dispatches rows store, checking every row first.

    Equal values are decoded once per call and the result shared: recurrence
    rules, durations, types, targets and the instants of creation, change and
    end. The payloads are parsed together, as one JSON array; each dispatch
    gets its own.

    Args:
        rows: The rows, with the columns of `SELECT` in order.

    Returns:
        The dispatches, equal to those that were encoded, in the rows' order.

    Raises:
        CorruptRow: If a row's values do not match its CRC or cannot be decoded.
    """
    try:
        return _decode_all(rows)
    except CorruptRow:
        raise
    except Exception as error:
        # Whatever a damaged value makes a decoder raise, it means the same.
        raise CorruptRow(f"a dispatch row cannot be read: {error}") from error


def _decode_all(rows: list[Row]) -> list[Dispatch]:
    # Every row's CRC is checked before any dispatch is returned, so a damaged
    # file is refused as a whole; the loop keeps per-row work to lookups.
    pack = _INTEGERS.pack
    crc32 = zlib.crc32
    none = _NONE
    for row in rows:
        if len(row) != len(COLUMNS):
            raise CorruptRow(f"a dispatch row has {len(row)} values")
        (key, type_, start, duration, target, active, dry_run) = row[:7]
        (payload, recurrence, create, update, end, crc) = row[7:]
        integers = pack(
            key,
            start,
            none if duration is None else duration,
            active | dry_run << 1,
            create,
            update,
            none if end is None else end,
        )
        if crc32(integers + type_ + payload + target + recurrence) != crc:
            raise CorruptRow(f"the row of dispatch {key!r} fails its checksum")
    payloads = json.loads(b"[" + b",".join([row[7] for row in rows]) + b"]")
    if len(payloads) != len(rows):
        raise CorruptRow("the payloads do not match the rows")
    instants = _Memo(_instant)
    durations = _Memo(lambda micros: timedelta(0, 0, micros))
    types = _Memo(bytes.decode)
    targets = _Memo(_targets.decode)
    rules = _Memo(_rule)
    epoch = _EPOCH
    micros = timedelta
    from_values = Dispatch.from_values
    return [
        from_values(
            DispatchId(row[0]),
            types[row[1]],
            epoch + micros(0, 0, row[2]),
            None if row[3] is None else durations[row[3]],
            targets[row[4]],
            bool(row[5]),
            bool(row[6]),
            payload,
            rules[row[8]],
            instants[row[9]],
            instants[row[10]],
            None if row[11] is None else instants[row[11]],
        )
        for row, payload in zip(rows, payloads, strict=True)
    ]
