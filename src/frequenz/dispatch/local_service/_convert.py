# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Conversions between protobuf messages, SQLite rows and timestamps.

All times are kept as integer microseconds since the UNIX epoch (UTC): that is
exact, sorts naturally and matches the resolution of Python's `datetime`.
Nanoseconds below a microsecond are dropped on the way in.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from frequenz.api.dispatch.v1.dispatch_pb2 import (
    Dispatch,
    DispatchData,
    DispatchMetadata,
    RecurrenceRule,
    TargetComponents,
)
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

MICROS_PER_SECOND = 1_000_000
"""Microseconds in one second."""


def wall_clock_micros() -> int:
    """Return the current wall-clock time.

    Returns:
        Microseconds since the UNIX epoch (UTC).
    """
    return time.time_ns() // 1_000


def timestamp_to_micros(timestamp: Timestamp) -> int:
    """Convert a protobuf timestamp to microseconds since the epoch.

    Args:
        timestamp: The timestamp to convert.

    Returns:
        Microseconds since the UNIX epoch; sub-microsecond digits are dropped.
    """
    return timestamp.seconds * MICROS_PER_SECOND + timestamp.nanos // 1_000


def micros_to_timestamp(micros: int) -> Timestamp:
    """Convert microseconds since the epoch to a protobuf timestamp.

    Args:
        micros: Microseconds since the UNIX epoch.

    Returns:
        The equivalent timestamp.
    """
    seconds, rest = divmod(micros, MICROS_PER_SECOND)
    return Timestamp(seconds=seconds, nanos=rest * 1_000)


def round_to_second(micros: int) -> int:
    """Round a time to the nearest whole second, ties to even.

    The cloud service stores start times with whole-second precision, and the
    client's `rounded_start_time()` mirrors that with Python's `round()`, which
    rounds ties to even. Doing exactly the same here keeps a client's local
    expectation and the stored value identical.

    Args:
        micros: Microseconds since the UNIX epoch.

    Returns:
        The rounded time, in microseconds.
    """
    seconds, rest = divmod(micros, MICROS_PER_SECOND)
    half = MICROS_PER_SECOND // 2
    if rest > half or (rest == half and seconds % 2 == 1):
        seconds += 1
    return seconds * MICROS_PER_SECOND


def is_recurring(data: DispatchData) -> bool:
    """Tell whether a dispatch recurs.

    Args:
        data: The dispatch data.

    Returns:
        Whether a recurrence frequency is set.
    """
    return data.recurrence.freq != RecurrenceRule.FREQUENCY_UNSPECIFIED


@dataclass(frozen=True)
class StoredDispatch:
    """A dispatch as kept by the storage: user data plus server metadata.

    `data` is a protobuf message and therefore mutable; by convention nobody
    mutates it after construction (updates work on a copy).
    """

    dispatch_id: int
    """The unique, never reused identifier."""

    microgrid_id: int
    """The microgrid the dispatch belongs to."""

    data: DispatchData
    """The user-provided dispatch data."""

    create_time_us: int
    """When the dispatch was created, in microseconds since the epoch."""

    update_time_us: int
    """When the dispatch was last changed, in microseconds since the epoch."""

    @property
    def start_time_us(self) -> int:
        """The start time, in microseconds since the epoch."""
        return timestamp_to_micros(self.data.start_time)

    @property
    def end_time_us(self) -> int | None:
        """The computed end time, in microseconds since the epoch.

        Only a non-recurring dispatch with a duration has a known end; every
        other dispatch is open-ended and this is `None`.
        """
        if is_recurring(self.data) or not self.data.HasField("duration"):
            return None
        return self.start_time_us + self.data.duration * MICROS_PER_SECOND

    def to_protobuf(self) -> Dispatch:
        """Build the wire representation, including computed metadata.

        Returns:
            The dispatch message as sent to clients.
        """
        end_time_us = self.end_time_us
        metadata = DispatchMetadata(
            dispatch_id=self.dispatch_id,
            create_time=micros_to_timestamp(self.create_time_us),
            update_time=micros_to_timestamp(self.update_time_us),
            end_time=(
                None if end_time_us is None else micros_to_timestamp(end_time_us)
            ),
        )
        data = DispatchData()
        data.CopyFrom(self.data)
        return Dispatch(metadata=metadata, data=data)


DATA_COLUMNS = (
    "type",
    "start_time_us",
    "duration_s",
    "is_active",
    "is_dry_run",
    "target",
    "payload",
    "recurrence",
)
"""Columns that hold the user data of a dispatch, in `data_to_columns` order."""


def data_to_columns(data: DispatchData) -> tuple[Any, ...]:
    """Flatten dispatch data into column values.

    Scalars get their own columns so the database stays inspectable with the
    `sqlite3` shell; nested messages are stored as serialized protobuf, which
    round-trips exactly.

    Args:
        data: The dispatch data.

    Returns:
        Values for `DATA_COLUMNS`, in that order.
    """
    return (
        data.type,
        timestamp_to_micros(data.start_time),
        data.duration if data.HasField("duration") else None,
        int(data.is_active),
        int(data.is_dry_run),
        data.target.SerializeToString(deterministic=True),
        data.payload.SerializeToString(deterministic=True),
        data.recurrence.SerializeToString(deterministic=True),
    )


def row_to_stored(row: sqlite3.Row) -> StoredDispatch:
    """Rebuild a stored dispatch from a database row.

    Args:
        row: A row selected with `id`, `microgrid_id`, `create_time_us`,
            `update_time_us` and all of `DATA_COLUMNS`.

    Returns:
        The stored dispatch.
    """
    data = DispatchData(
        type=row["type"],
        start_time=micros_to_timestamp(row["start_time_us"]),
        duration=row["duration_s"],
        target=TargetComponents.FromString(row["target"]),
        is_active=bool(row["is_active"]),
        is_dry_run=bool(row["is_dry_run"]),
        payload=Struct.FromString(row["payload"]),
        recurrence=RecurrenceRule.FromString(row["recurrence"]),
    )
    return StoredDispatch(
        dispatch_id=row["id"],
        microgrid_id=row["microgrid_id"],
        data=data,
        create_time_us=row["create_time_us"],
        update_time_us=row["update_time_us"],
    )
