# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Validation of dispatch data sent by clients.

Every check raises `InvalidArgumentError` naming the offending field, so the
servicer can answer INVALID_ARGUMENT with a message a user can act on.

The limits, each refused with INVALID_ARGUMENT naming its field:

| limit               | value                        | field                      |
| ------------------- | ---------------------------- | -------------------------- |
| `MAX_ID`            | 2^63 - 1 (SQLite's integers) | `microgrid_id`             |
| `MAX_TYPE_LENGTH`   | 256 characters               | `type`                     |
| `MAX_TARGET_SIZE`   | 10,000 ids or categories     | `target`                   |
| `MAX_PAYLOAD_BYTES` | 50 KiB serialized (`.proto`) | `payload`                  |
| `MAX_PAYLOAD_DEPTH` | 5 levels (`.proto`)          | `payload`                  |
| finite numbers      | no NaN, no ±Infinity         | `payload`                  |
| latest time         | 9999-12-31T23:59:59Z         | `start_time`, `duration`   |
| `MAX_INTERVAL`      | 10,000                       | `recurrence.interval`      |
| `MAX_COUNT`         | 4,096                        | `recurrence.end_criteria`  |
| `_MAX_RULE_ENTRIES` | each valid value once        | `recurrence.by...` lists   |

They make sure that everything stored can be read back by the client: its
`datetime`s end in year 9999, its JSON decoding of payloads refuses NaN and
Infinity, and a default gRPC client accepts at most 4 MiB per message (every
dispatch within these limits is far smaller, see `_pagination.MAX_PAGE_BYTES`).
Dispatch ids larger than `MAX_ID` cannot exist: they are answered NOT_FOUND.
"""

from __future__ import annotations

import math
from typing import Any

from frequenz.api.common.v1alpha8.microgrid.electrical_components.electrical_components_pb2 import (  # noqa: E501
    BatteryType,
    ElectricalComponentCategory,
    EvChargerType,
    InverterType,
)
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    DispatchData,
    RecurrenceRule,
    TargetComponents,
)
from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from ._convert import MICROS_PER_SECOND

MAX_ID = 2**63 - 1
"""Largest microgrid or dispatch id: SQLite stores signed 64-bit integers."""

MAX_TYPE_LENGTH = 256
"""Longest accepted dispatch `type`, in characters."""

MAX_TARGET_SIZE = 10_000
"""Most component ids, or component categories, one target may name."""

MAX_PAYLOAD_BYTES = 50 * 1024
"""Largest accepted payload, serialized."""

MAX_PAYLOAD_DEPTH = 5
"""Deepest accepted payload nesting; the top-level object is depth 1."""

MAX_INTERVAL = 10_000
"""Largest accepted recurrence interval."""

MAX_COUNT = 4096
"""Largest accepted recurrence end count."""

START_TIME_TOLERANCE_US = 1 * MICROS_PER_SECOND
"""How far in the past a start time may be and still count as "now".

A client that checked `start_time > now` a moment ago must not be rejected
because of network latency or because the service rounds start times to
whole seconds; one second covers both.
"""

_Category = ElectricalComponentCategory

_CATEGORY_TYPES = {
    "battery": (_Category.ELECTRICAL_COMPONENT_CATEGORY_BATTERY, BatteryType),
    "inverter": (_Category.ELECTRICAL_COMPONENT_CATEGORY_INVERTER, InverterType),
    "ev_charger": (_Category.ELECTRICAL_COMPONENT_CATEGORY_EV_CHARGER, EvChargerType),
}
"""Per `CategoryAndType.type` oneof member: the category it requires, its enum."""


class InvalidArgumentError(ValueError):
    """A request field has an invalid value."""

    def __init__(self, field: str, problem: str) -> None:
        """Create an error.

        Args:
            field: Dotted path of the offending field, as named in the request.
            problem: What is wrong with it.
        """
        super().__init__(f"{field}: {problem}")
        self.field = field
        """Dotted path of the offending field."""


def validate_microgrid_id(microgrid_id: int) -> None:
    """Reject microgrid ids the service cannot store.

    Args:
        microgrid_id: The `microgrid_id` of a request.

    Raises:
        InvalidArgumentError: If the id is larger than `MAX_ID`.
    """
    if microgrid_id > MAX_ID:
        raise InvalidArgumentError("microgrid_id", f"must be at most {MAX_ID}")


def _is_known(enum_type: Any, value: int) -> bool:
    """Tell whether a value is a named, non-UNSPECIFIED member of a proto enum."""
    return value != 0 and value in enum_type.DESCRIPTOR.values_by_number


def validate_start_time(start_time_us: int, now_us: int, field: str) -> None:
    """Reject start times in the past, like the cloud service does.

    Args:
        start_time_us: The requested start time.
        now_us: The current time.
        field: Name of the field, for the error message.

    Raises:
        InvalidArgumentError: If the start time is in the past.
    """
    if start_time_us < now_us - START_TIME_TOLERANCE_US:
        raise InvalidArgumentError(field, "must not be in the past")


def _validate_size(size: int, field: str) -> None:
    if size > MAX_TARGET_SIZE:
        raise InvalidArgumentError(
            field, f"must not name more than {MAX_TARGET_SIZE} entries, got {size}"
        )


def validate_target(target: TargetComponents, field: str) -> None:
    """Check that a target names component ids or valid categories.

    Args:
        target: The target.
        field: Name of the field, for error messages.

    Raises:
        InvalidArgumentError: If the target is unset or names unknown categories
            or types.
    """
    match target.WhichOneof("components"):
        case "component_ids":
            _validate_size(len(target.component_ids.ids), f"{field}.component_ids")
        case "component_categories":
            # Deprecated message, still accepted because the API accepts it.
            categories = target.component_categories.categories
            _validate_size(len(categories), f"{field}.component_categories")
            for index, category in enumerate(categories):
                if not _is_known(ElectricalComponentCategory, category):
                    raise InvalidArgumentError(
                        f"{field}.component_categories.categories[{index}]",
                        f"unknown component category {category}",
                    )
        case "component_categories_types":
            entries = target.component_categories_types.categories
            _validate_size(len(entries), f"{field}.component_categories_types")
            for index, entry in enumerate(entries):
                entry_field = f"{field}.component_categories_types.categories[{index}]"
                if not _is_known(ElectricalComponentCategory, entry.category):
                    raise InvalidArgumentError(
                        f"{entry_field}.category",
                        f"unknown component category {entry.category}",
                    )
                kind = entry.WhichOneof("type")
                if kind is None:
                    continue
                required_category, enum_type = _CATEGORY_TYPES[kind]
                if entry.category != required_category:
                    raise InvalidArgumentError(
                        f"{entry_field}.{kind}",
                        "does not match the component category",
                    )
                value = getattr(entry, kind)
                if not _is_known(enum_type, value):
                    raise InvalidArgumentError(
                        f"{entry_field}.{kind}", f"unknown type {value}"
                    )
        case None:
            raise InvalidArgumentError(
                field, "must name component ids or component categories"
            )


def _all_finite(value: Value) -> bool:
    match value.WhichOneof("kind"):
        case "number_value":
            return math.isfinite(value.number_value)
        case "struct_value":
            return all(_all_finite(v) for v in value.struct_value.fields.values())
        case "list_value":
            return all(_all_finite(v) for v in value.list_value.values)
        case _:
            return True


def _value_depth(value: Value) -> int:
    match value.WhichOneof("kind"):
        case "struct_value":
            return 1 + _struct_depth(value.struct_value)
        case "list_value":
            return 1 + max(
                (_value_depth(item) for item in value.list_value.values), default=0
            )
        case _:
            return 0


def _struct_depth(struct: Struct) -> int:
    return max((_value_depth(value) for value in struct.fields.values()), default=0)


def validate_payload(payload: Struct, field: str) -> None:
    """Check the documented payload limits (depth, size, finite numbers).

    Args:
        payload: The payload.
        field: Name of the field, for error messages.

    Raises:
        InvalidArgumentError: If the payload is too deep or too large, or
            holds NaN or an infinite number (JSON has neither).
    """
    if 1 + _struct_depth(payload) > MAX_PAYLOAD_DEPTH:
        raise InvalidArgumentError(
            field, f"must not be nested deeper than {MAX_PAYLOAD_DEPTH} levels"
        )
    if payload.ByteSize() > MAX_PAYLOAD_BYTES:
        raise InvalidArgumentError(
            field, f"must not be larger than {MAX_PAYLOAD_BYTES} bytes"
        )
    for key, value in payload.fields.items():
        if not _all_finite(value):
            raise InvalidArgumentError(
                field, f"{key!r} holds NaN or Infinity, which JSON cannot represent"
            )


_MAX_RULE_ENTRIES = {
    "byminutes": 60,
    "byhours": 24,
    "byweekdays": 7,
    "bymonthdays": 62,
    "bymonths": 12,
}
"""Most entries per recurrence list: each distinct valid value once."""


def _validate_range(
    values: list[int], low: int, high: int, field: str, *, allow_negative: bool = False
) -> None:
    for index, value in enumerate(values):
        magnitude = abs(value) if allow_negative else value
        if not low <= magnitude <= high:
            raise InvalidArgumentError(f"{field}[{index}]", f"{value} is out of range")


def _validate_lists(rule: RecurrenceRule, field: str) -> None:
    for name, most in _MAX_RULE_ENTRIES.items():
        if len(getattr(rule, name)) > most:
            raise InvalidArgumentError(
                f"{field}.{name}", f"must not have more than {most} entries"
            )
    _validate_range(list(rule.byminutes), 0, 59, f"{field}.byminutes")
    _validate_range(list(rule.byhours), 0, 23, f"{field}.byhours")
    for index, weekday in enumerate(rule.byweekdays):
        if not _is_known(RecurrenceRule.Weekday, weekday):
            raise InvalidArgumentError(
                f"{field}.byweekdays[{index}]", f"unknown weekday {weekday}"
            )
    _validate_range(
        list(rule.bymonthdays), 1, 31, f"{field}.bymonthdays", allow_negative=True
    )
    _validate_range(list(rule.bymonths), 1, 12, f"{field}.bymonths")
    if rule.bymonthdays and rule.freq == RecurrenceRule.FREQUENCY_WEEKLY:
        raise InvalidArgumentError(
            f"{field}.bymonthdays", "must not be set for a weekly recurrence"
        )


def validate_recurrence(rule: RecurrenceRule, field: str) -> None:
    """Check a recurrence rule for values that cannot describe a schedule.

    Args:
        rule: The recurrence rule.
        field: Name of the field, for error messages.

    Raises:
        InvalidArgumentError: If any part of the rule is invalid.
    """
    if rule.freq not in RecurrenceRule.Frequency.DESCRIPTOR.values_by_number:
        raise InvalidArgumentError(f"{field}.freq", f"unknown frequency {rule.freq}")
    recurring = rule.freq != RecurrenceRule.FREQUENCY_UNSPECIFIED
    # Clients turn the rule into a `dateutil.rrule`, which fails for interval 0.
    if recurring and not 1 <= rule.interval <= MAX_INTERVAL:
        raise InvalidArgumentError(
            f"{field}.interval",
            f"must be between 1 and {MAX_INTERVAL} for a recurring dispatch",
        )
    if rule.interval > MAX_INTERVAL:
        raise InvalidArgumentError(
            f"{field}.interval", f"must not be larger than {MAX_INTERVAL}"
        )
    if rule.HasField("end_criteria"):
        criteria = rule.end_criteria
        match criteria.WhichOneof("count_or_until"):
            case "count":
                if not 1 <= criteria.count <= MAX_COUNT:
                    raise InvalidArgumentError(
                        f"{field}.end_criteria.count",
                        f"must be between 1 and {MAX_COUNT}",
                    )
            case "until_time":
                validate_timestamp(
                    criteria.until_time, f"{field}.end_criteria.until_time"
                )
            case None:
                raise InvalidArgumentError(
                    f"{field}.end_criteria", "must set either count or until_time"
                )
    _validate_lists(rule, field)


def validate_dispatch_data(data: DispatchData, prefix: str) -> None:
    """Check dispatch data; whether the start time is in the past is not checked.

    That check is separate because it depends on the request: a create or an
    update of the start time must not start in the past, other updates may
    leave a past start time alone.

    Args:
        data: The dispatch data.
        prefix: Prefix for field names in error messages, e.g. `"dispatch_data."`.

    Raises:
        InvalidArgumentError: If any field is invalid.
    """
    if not data.type.strip():
        raise InvalidArgumentError(f"{prefix}type", "must not be empty")
    if len(data.type) > MAX_TYPE_LENGTH:
        raise InvalidArgumentError(
            f"{prefix}type", f"must not be longer than {MAX_TYPE_LENGTH} characters"
        )
    validate_timestamp(data.start_time, f"{prefix}start_time")
    if (
        data.HasField("duration")
        and data.start_time.seconds + data.duration > _MAX_TIMESTAMP_SECONDS
    ):
        raise InvalidArgumentError(
            f"{prefix}duration",
            "makes the dispatch end after 9999-12-31T23:59:59Z, the latest time "
            "clients can represent",
        )
    validate_target(data.target, f"{prefix}target")
    validate_payload(data.payload, f"{prefix}payload")
    validate_recurrence(data.recurrence, f"{prefix}recurrence")


_MIN_TIMESTAMP_SECONDS = -62_135_596_800
"""0001-01-01T00:00:00Z, the earliest time protobuf timestamps (and Python) allow."""

_MAX_TIMESTAMP_SECONDS = 253_402_300_799
"""9999-12-31T23:59:59Z, the latest time protobuf timestamps (and Python) allow."""


def validate_timestamp(timestamp: Timestamp, field: str) -> None:
    """Reject timestamps that clients could not turn into a `datetime`.

    Args:
        timestamp: The timestamp.
        field: Name of the field, for the error message.

    Raises:
        InvalidArgumentError: If the timestamp is out of the valid range.
    """
    if not (
        _MIN_TIMESTAMP_SECONDS <= timestamp.seconds <= _MAX_TIMESTAMP_SECONDS
        and 0 <= timestamp.nanos < 1_000_000_000
    ):
        raise InvalidArgumentError(field, "is not a valid timestamp")
