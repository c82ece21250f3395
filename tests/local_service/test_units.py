# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Unit tests of the pure helpers behind the service."""

from __future__ import annotations

import pytest
from frequenz.api.common.v1alpha8.microgrid.electrical_components.electrical_components_pb2 import (  # noqa: E501
    BatteryType,
    ElectricalComponentCategory,
)
from frequenz.api.dispatch.v1 import dispatch_pb2 as pb
from google.protobuf.struct_pb2 import Struct

from frequenz.dispatch.local_service import format_url
from frequenz.dispatch.local_service._convert import (
    StoredDispatch,
    micros_to_timestamp,
    round_to_second,
    timestamp_to_micros,
)
from frequenz.dispatch.local_service._filters import matches_query, targets_overlap
from frequenz.dispatch.local_service._mask import apply_update, check_paths
from frequenz.dispatch.local_service._validation import (
    InvalidArgumentError,
    validate_payload,
)

Target = pb.TargetComponents
CategoryAndType = Target.CategoryAndType
BATTERY = ElectricalComponentCategory.ELECTRICAL_COMPONENT_CATEGORY_BATTERY
INVERTER = ElectricalComponentCategory.ELECTRICAL_COMPONENT_CATEGORY_INVERTER
LI_ION = BatteryType.BATTERY_TYPE_LI_ION
NA_ION = BatteryType.BATTERY_TYPE_NA_ION


def _ids(*ids: int) -> Target:
    return Target(component_ids=Target.IdSet(ids=ids))


def _categories(*entries: CategoryAndType) -> Target:
    return Target(component_categories_types=Target.CategoryTypeSet(categories=entries))


@pytest.mark.parametrize(
    ("micros", "expected_seconds"),
    [
        (1_400_000, 1),
        (1_600_000, 2),
        (1_500_000, 2),  # Ties go to even, like Python's round().
        (2_500_000, 2),
        (-1_500_000, -2),
    ],
)
def test_round_to_second(micros: int, expected_seconds: int) -> None:
    assert round_to_second(micros) == expected_seconds * 1_000_000


def test_timestamp_conversion_round_trips() -> None:
    for micros in (0, 1, 1_700_000_000_123_456, -1):
        assert timestamp_to_micros(micros_to_timestamp(micros)) == micros


@pytest.mark.parametrize(
    ("wanted", "actual", "expected"),
    [
        (_ids(1, 2), _ids(2, 3), True),
        (_ids(1), _ids(2), False),
        (_ids(1), _categories(CategoryAndType(category=BATTERY)), False),
        (
            _categories(CategoryAndType(category=BATTERY)),
            _categories(CategoryAndType(category=BATTERY, battery=LI_ION)),
            True,
        ),
        (
            _categories(CategoryAndType(category=BATTERY, battery=NA_ION)),
            _categories(CategoryAndType(category=BATTERY)),
            True,
        ),
        (
            _categories(CategoryAndType(category=BATTERY, battery=NA_ION)),
            _categories(CategoryAndType(category=BATTERY, battery=LI_ION)),
            False,
        ),
        (
            _categories(CategoryAndType(category=INVERTER)),
            Target(component_categories=Target.CategorySet(categories=[INVERTER])),
            True,
        ),
    ],
)
def test_targets_overlap(wanted: Target, actual: Target, expected: bool) -> None:
    assert targets_overlap(wanted, actual) is expected


def _stored(dispatch_id: int, type_: str) -> StoredDispatch:
    return StoredDispatch(
        dispatch_id=dispatch_id,
        microgrid_id=1,
        data=pb.DispatchData(type=type_),
        create_time_us=0,
        update_time_us=0,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("#42", True),
        ("#042", True),
        ("#4", False),
        ("#x", True),  # Not an id: matches the type "a#xb".
        ("#", True),  # Not an id either.
        ("a#", True),
        ("A#", False),
    ],
)
def test_matches_query(query: str, expected: bool) -> None:
    assert matches_query(query, _stored(42, "a#xb")) is expected


def test_mask_leaves_unmasked_fields_alone() -> None:
    current = pb.DispatchData(type="T", duration=10, is_active=True)
    current.payload.update({"keep": 1})
    update = pb.UpdateMicrogridDispatchRequest.DispatchUpdate(is_active=False)
    result = apply_update(current, update, ["is_active"])
    assert (result.is_active, result.duration, result.type) == (False, 10, "T")
    assert result.payload == current.payload
    assert current.is_active  # The input is not modified.


def test_mask_paths_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="update_mask"):
        check_paths(["recurrence.unknown"])
    check_paths(["recurrence", "recurrence.freq", "duration"])


def test_payload_depth_counts_lists() -> None:
    ok = Struct()
    ok.update({"a": [[[{"b": 1}]]]})  # 1 + list + list + list + struct = 5
    validate_payload(ok, "payload")
    too_deep = Struct()
    too_deep.update({"a": [[[[{"b": 1}]]]]})
    with pytest.raises(InvalidArgumentError, match="payload"):
        validate_payload(too_deep, "payload")


def test_format_url() -> None:
    assert format_url("127.0.0.1", 5) == "grpc://127.0.0.1:5?ssl=false"
    assert format_url("::1", 5) == "grpc://[::1]:5?ssl=false"
