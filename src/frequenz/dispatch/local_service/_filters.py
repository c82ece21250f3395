# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Evaluation of `DispatchFilter` against stored dispatches.

Different filter fields combine with AND; the entries of one repeated field
(`targets`, `dispatch_ids`, `queries`) combine with OR. Time intervals are
half-open: `start_time <= value < end_time`, either bound optional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from frequenz.api.common.v1alpha8.types.interval_pb2 import Interval
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    DispatchData,
    DispatchFilter,
    TargetComponents,
)

from ._convert import StoredDispatch, is_recurring, timestamp_to_micros
from ._validation import validate_target

_ID_QUERY = re.compile(r"#([0-9]+)")
"""A query that names a dispatch id; anything else is a type substring."""


@dataclass(frozen=True)
class _Category:
    """One targeted category, with its optional type (`kind` and `value`)."""

    category: int
    kind: str | None
    value: int

    def overlaps(self, other: _Category) -> bool:
        """Tell whether two category targets can refer to the same component.

        A category without a type covers every type of that category.
        """
        if self.category != other.category:
            return False
        if self.kind is None or other.kind is None:
            return True
        return (self.kind, self.value) == (other.kind, other.value)


def _categories(target: TargetComponents) -> list[_Category]:
    match target.WhichOneof("components"):
        case "component_categories":
            return [
                _Category(category, None, 0)
                for category in target.component_categories.categories
            ]
        case "component_categories_types":
            result = []
            for entry in target.component_categories_types.categories:
                kind = entry.WhichOneof("type")
                value = 0 if kind is None else getattr(entry, kind)
                result.append(_Category(entry.category, kind, value))
            return result
        case _:
            return []


def targets_overlap(wanted: TargetComponents, actual: TargetComponents) -> bool:
    """Tell whether a dispatch target matches a target filter.

    They match when they share a component id, or a category (see
    `_Category.overlaps`). Ids and categories never match each other, since
    the service does not know which category a component id has.

    Args:
        wanted: The target from the filter.
        actual: The target of the dispatch.

    Returns:
        Whether they overlap.
    """
    if wanted.WhichOneof("components") == "component_ids":
        if actual.WhichOneof("components") != "component_ids":
            return False
        return not set(wanted.component_ids.ids).isdisjoint(actual.component_ids.ids)
    actual_categories = _categories(actual)
    return any(
        category.overlaps(other)
        for category in _categories(wanted)
        for other in actual_categories
    )


def matches_query(query: str, dispatch: StoredDispatch) -> bool:
    """Tell whether a free-text query matches a dispatch.

    `#<digits>` matches the dispatch with that id; any other query (including
    `#not_an_id`) matches dispatches whose type contains it, case-sensitively.

    Args:
        query: The query.
        dispatch: The dispatch.

    Returns:
        Whether it matches.
    """
    if id_match := _ID_QUERY.fullmatch(query):
        # Compared as text: `int()` refuses more than 4300 digits.
        return (id_match.group(1).lstrip("0") or "0") == str(dispatch.dispatch_id)
    return query in dispatch.data.type


def _in_interval(value_us: int | None, interval: Interval) -> bool:
    """Check a time against a half-open interval; `None` means "never ends"."""
    if (
        interval.HasField("start_time")
        and value_us is not None
        and value_us < timestamp_to_micros(interval.start_time)
    ):
        return False
    return not interval.HasField("end_time") or (
        value_us is not None and value_us < timestamp_to_micros(interval.end_time)
    )


def check_filter(filter_: DispatchFilter) -> None:
    """Reject filters that cannot be evaluated.

    Args:
        filter_: The filter of a list request.

    Raises:
        InvalidArgumentError: If a target in the filter is malformed.
    """
    for index, target in enumerate(filter_.targets):
        validate_target(target, f"filter.targets[{index}]")


def _matches_flags(data: DispatchData, filter_: DispatchFilter) -> bool:
    """Check the boolean criteria of a filter."""
    if filter_.HasField("is_active") and data.is_active != filter_.is_active:
        return False
    if filter_.HasField("is_dry_run") and data.is_dry_run != filter_.is_dry_run:
        return False
    if filter_.HasField("is_recurring"):
        return is_recurring(data) == filter_.is_recurring
    # `filter` (RecurrenceFilter) has no criteria yet; asking for it at all
    # asks for recurring dispatches.
    return not filter_.HasField("filter") or is_recurring(data)


def _matches_times(dispatch: StoredDispatch, filter_: DispatchFilter) -> bool:
    """Check the time interval criteria of a filter."""
    return (
        (
            not filter_.HasField("start_time_interval")
            or _in_interval(dispatch.start_time_us, filter_.start_time_interval)
        )
        and (
            not filter_.HasField("end_time_interval")
            or _in_interval(dispatch.end_time_us, filter_.end_time_interval)
        )
        and (
            not filter_.HasField("update_time_interval")
            or _in_interval(dispatch.update_time_us, filter_.update_time_interval)
        )
    )


def matches(dispatch: StoredDispatch, filter_: DispatchFilter) -> bool:
    """Tell whether a dispatch passes a filter.

    Args:
        dispatch: The dispatch.
        filter_: The (checked) filter.

    Returns:
        Whether every set criterion holds.
    """
    if filter_.dispatch_ids and dispatch.dispatch_id not in filter_.dispatch_ids:
        return False
    if filter_.targets and not any(
        targets_overlap(target, dispatch.data.target) for target in filter_.targets
    ):
        return False
    if filter_.queries and not any(
        matches_query(query, dispatch) for query in filter_.queries
    ):
        return False
    return _matches_flags(dispatch.data, filter_) and _matches_times(dispatch, filter_)
