# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Application of `UpdateMicrogridDispatchRequest` field masks.

Field-mask semantics: a path in the mask is copied from the update message,
and a path whose field is unset in the update resets that field (this is how
clients clear the duration). Fields not in the mask keep their value.
"""

from __future__ import annotations

from collections.abc import Sequence

from frequenz.api.dispatch.v1.dispatch_pb2 import (
    DispatchData,
    RecurrenceRule,
    UpdateMicrogridDispatchRequest,
)

from ._validation import InvalidArgumentError

DispatchUpdate = UpdateMicrogridDispatchRequest.DispatchUpdate
"""The update message type."""

RecurrenceRuleUpdate = DispatchUpdate.RecurrenceRuleUpdate
"""The recurrence part of the update message."""

_RECURRENCE_LISTS = ("byminutes", "byhours", "byweekdays", "bymonthdays", "bymonths")
"""Repeated recurrence fields; each is replaced as a whole."""

UPDATABLE_PATHS = frozenset(
    {
        "start_time",
        "duration",
        "target",
        "is_active",
        "payload",
        "recurrence",
        "recurrence.freq",
        "recurrence.interval",
        "recurrence.end_criteria",
        *(f"recurrence.{name}" for name in _RECURRENCE_LISTS),
    }
)
"""Every path accepted in `update_mask`; `type` and `is_dry_run` are immutable."""


def check_paths(paths: Sequence[str]) -> None:
    """Reject empty masks and paths that name no updatable field.

    Args:
        paths: The `update_mask.paths` of the request.

    Raises:
        InvalidArgumentError: If the mask is empty or names an unknown field.
    """
    if not paths:
        raise InvalidArgumentError("update_mask", "must name at least one field")
    for path in paths:
        if path not in UPDATABLE_PATHS:
            raise InvalidArgumentError(
                "update_mask", f"{path!r} is not an updatable field"
            )


def _apply_recurrence_path(
    rule: RecurrenceRule, update: RecurrenceRuleUpdate, name: str
) -> None:
    match name:
        case "freq":
            # Unset in the update means "reset", i.e. no longer recurring.
            rule.freq = update.freq
        case "interval":
            rule.interval = update.interval
        case "end_criteria":
            if update.HasField("end_criteria"):
                rule.end_criteria.CopyFrom(update.end_criteria)
            else:
                rule.ClearField("end_criteria")
        case _:
            target = getattr(rule, name)
            del target[:]
            target.extend(getattr(update, name))


def apply_update(
    current: DispatchData, update: DispatchUpdate, paths: Sequence[str]
) -> DispatchData:
    """Compute the data resulting from an update.

    Args:
        current: The stored data; it is not modified.
        update: The update message.
        paths: The (checked) mask paths.

    Returns:
        A new message with the masked fields taken from the update.
    """
    result = DispatchData()
    result.CopyFrom(current)
    for path in paths:
        match path.split("."):
            case ["duration"]:
                if update.HasField("duration"):
                    result.duration = update.duration
                else:
                    result.ClearField("duration")
            case ["is_active"]:
                result.is_active = update.is_active
            case ["start_time"]:
                result.start_time.CopyFrom(update.start_time)
            case ["target"]:
                result.target.CopyFrom(update.target)
            case ["payload"]:
                result.payload.CopyFrom(update.payload)
            case ["recurrence"]:
                for name in ("freq", "interval", "end_criteria", *_RECURRENCE_LISTS):
                    _apply_recurrence_path(result.recurrence, update.recurrence, name)
            case ["recurrence", name]:
                _apply_recurrence_path(result.recurrence, update.recurrence, name)
            case _:
                raise InvalidArgumentError(
                    "update_mask", f"{path!r} is not an updatable field"
                )
    return result
