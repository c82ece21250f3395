# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The upcoming run windows of dispatches over a horizon, grouped into lanes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import TargetCategories, TargetIds

from .._dispatch import Dispatch

Merge = Literal["type", "type-target", "none"]
"""How dispatches are grouped into lanes, named as on the command line.

`type` is [MergeByType][frequenz.dispatch.MergeByType], `type-target` is
[MergeByTypeTarget][frequenz.dispatch.MergeByTypeTarget], `none` gives every
dispatch its own lane. A live and a dry-run dispatch never share a lane.
"""

MERGE_CHOICES: Final[tuple[str, ...]] = get_args(Merge)
"""The accepted values of `merge`, for a command line's choices."""

DEFAULT_MAX_WINDOWS: Final = 10_000
"""Windows computed per dispatch at most (a minutely rule over a week is 10,080)."""

_TICK: Final = timedelta(microseconds=1)
# Anything past this is not a horizon anyone can draw; it also keeps `now + hours`
# far from datetime's overflow.
_MAX_HOURS: Final = 24 * 366 * 10


@dataclass(frozen=True, slots=True)
class TimelineWindow:
    """One run of a dispatch inside the horizon."""

    dispatch_id: int
    """The id of the dispatch that runs."""

    start: datetime
    """When the run starts, or the horizon's start if it started before."""

    end: datetime
    """When the run ends, clipped to the horizon's end.

    A dispatch without duration runs to the horizon's end; for a zero-duration
    dispatch `end` equals `start`.
    """

    dry_run: bool
    """Whether the dispatch is a dry run."""

    @property
    def is_instant(self) -> bool:
        """Whether the window is an instant (a zero-duration dispatch).

        Returns:
            True if the window has no length.
        """
        return self.start == self.end


@dataclass(frozen=True, slots=True)
class Lane:
    """The windows of all dispatches that share one actor identity."""

    type: str
    """The dispatch type of the lane."""

    target: str | None
    """The target as text, or None when the merge strategy ignores targets."""

    dry_run: bool
    """Whether the lane holds dry-run dispatches (lanes never mix both)."""

    dispatch_ids: tuple[int, ...]
    """The dispatches of the lane that run in the horizon, in ascending order."""

    windows: tuple[TimelineWindow, ...]
    """Every window of the lane's dispatches, ordered by start."""

    label: str
    """The lane's name: type, then target and dry-run flag when they matter.

    For example `BATTERY_CHARGE`, `BATTERY_CHARGE → 4,5 [dry-run]` or (a lane of
    its own, merge `none`) `#12 BATTERY_CHARGE → all`.
    """

    def spans(self) -> list[tuple[datetime, datetime]]:
        """Return the time the lane's actor runs, as disjoint intervals.

        Overlapping and touching windows are merged, so a minutely rule with a
        one-minute duration draws as one bar; instants are left out (see
        `instants`).

        Returns:
            Sorted, disjoint `(start, end)` intervals.
        """
        merged: list[tuple[datetime, datetime]] = []
        for window in self.windows:
            if window.is_instant:
                continue
            if merged and window.start <= merged[-1][1]:
                if window.end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], window.end)
            else:
                merged.append((window.start, window.end))
        return merged

    def instants(self) -> list[datetime]:
        """Return the zero-duration runs of the lane.

        Returns:
            Their instants, sorted, each once.
        """
        return sorted({w.start for w in self.windows if w.is_instant})


@dataclass(frozen=True, slots=True)
class Timeline:
    """The lanes of a set of dispatches over a horizon."""

    start: datetime
    """The horizon's start (the `now` asked for)."""

    end: datetime
    """The horizon's end (excluded)."""

    merge: Merge
    """The merge strategy the lanes were grouped by."""

    lanes: tuple[Lane, ...]
    """The lanes with at least one window, ordered by type, target, dry-run flag."""

    truncated: dict[int, datetime]
    """Dispatches with more windows than the limit: the instant after which their
    windows were not computed, by dispatch id."""

    skipped: dict[int, str]
    """Dispatches whose schedule could not be interpreted, with the reason."""


def target_text(target: object) -> str:
    """Write a dispatch target compactly.

    Args:
        target: The dispatch's target (component ids or categories).

    Returns:
        `all` for an empty target, else the ids or category names, comma-separated.
    """
    if isinstance(target, TargetIds):
        return ",".join(str(i) for i in sorted(target)) or "all"
    if isinstance(target, TargetCategories):
        names = sorted(getattr(c.target, "name", str(c.target)) for c in target)
        return ",".join(names) or "all"
    return str(target)


def compute_timeline(
    dispatches: Iterable[ClientDispatch],
    *,
    now: datetime,
    hours: float = 48,
    merge: Merge = "type",
    max_windows: int = DEFAULT_MAX_WINDOWS,
) -> Timeline:
    """Compute the upcoming run windows of dispatches, one lane per actor identity.

    Deleted and inactive dispatches have no windows. The cost is proportional to
    the number of windows inside the horizon, whatever the dispatches' age.

    Args:
        dispatches: The dispatches (client dispatches are accepted too).
        now: The horizon's start (timezone-aware).
        hours: The horizon's length in hours.
        merge: How dispatches share lanes: `type`, `type-target` or `none`.
        max_windows: The most windows computed per dispatch; later ones are
            reported in `Timeline.truncated`.

    Returns:
        The timeline.

    Raises:
        ValueError: If `now` is naive, `hours` is not a positive number of at most
            ten years, `merge` is not one of `MERGE_CHOICES` or `max_windows` is
            not positive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if not (isinstance(hours, int | float) and math.isfinite(hours)) or not (
        0 < hours <= _MAX_HOURS
    ):
        raise ValueError(f"hours must be a number in (0, {_MAX_HOURS}], got {hours!r}")
    if merge not in MERGE_CHOICES:
        raise ValueError(
            f"merge must be one of {', '.join(MERGE_CHOICES)}, got {merge!r}"
        )
    if max_windows < 1:
        raise ValueError(f"max_windows must be positive, got {max_windows!r}")
    horizon_end = now + timedelta(hours=hours)
    truncated: dict[int, datetime] = {}
    skipped: dict[int, str] = {}
    groups: dict[tuple[object, ...], list[tuple[Dispatch, list[TimelineWindow]]]] = {}
    for item in dispatches:
        dispatch = item if isinstance(item, Dispatch) else Dispatch(item)
        if dispatch.deleted or not dispatch.active:
            continue
        try:
            windows, cut = _windows(dispatch, now, horizon_end, max_windows)
        except (ValueError, TypeError, OverflowError) as error:
            # One uninterpretable dispatch must not hide every other one.
            skipped[int(dispatch.id)] = str(error)
            continue
        if cut is not None:
            truncated[int(dispatch.id)] = cut
        if windows:
            groups.setdefault(_lane_key(dispatch, merge), []).append(
                (dispatch, windows)
            )
    lanes = [_lane(members, merge) for members in groups.values()]
    lanes.sort(
        key=lambda lane: (lane.type, lane.target or "", lane.dry_run, lane.dispatch_ids)
    )
    return Timeline(now, horizon_end, merge, tuple(lanes), truncated, skipped)


def _lane_key(dispatch: Dispatch, merge: Merge) -> tuple[object, ...]:
    # The same identities as MergeByType / MergeByTypeTarget, plus the dry-run flag.
    if merge == "type":
        return (dispatch.type, dispatch.dry_run)
    if merge == "type-target":
        return (dispatch.type, dispatch.target, dispatch.dry_run)
    return (int(dispatch.id),)


def _lane(members: list[tuple[Dispatch, list[TimelineWindow]]], merge: Merge) -> Lane:
    first = members[0][0]
    windows = sorted(
        (w for _, ws in members for w in ws), key=lambda w: (w.start, w.end)
    )
    target = None if merge == "type" else target_text(first.target)
    parts = [first.type]
    if merge == "none":
        parts.insert(0, f"#{int(first.id)}")
    if target is not None:
        parts.append(f"→ {target}")
    if first.dry_run:
        parts.append("[dry-run]")
    return Lane(
        type=first.type,
        target=target,
        dry_run=first.dry_run,
        dispatch_ids=tuple(sorted(int(d.id) for d, _ in members)),
        windows=tuple(windows),
        label=" ".join(parts),
    )


def _windows(
    dispatch: Dispatch, start: datetime, end: datetime, limit: int
) -> tuple[list[TimelineWindow], datetime | None]:
    """Return a dispatch's windows that overlap `[start, end)`.

    Returns:
        The windows, clipped, and the instant after which windows were not
            computed because there were `limit` of them (or None).
    """
    ident = int(dispatch.id)
    dry_run = dispatch.dry_run
    duration = dispatch.duration
    if duration is None:
        # Without duration a dispatch runs once, from its start on, for ever.
        if dispatch.started_at(start):
            return [TimelineWindow(ident, start, end, dry_run)], None
        first = dispatch.next_run_after(start)
        if first is None or first >= end:
            return [], None
        return [TimelineWindow(ident, first, end, dry_run)], None
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    # A run that is still going at `start` began less than `duration` before it.
    cursor = start - duration + _TICK if duration > timedelta(0) else start
    windows: list[TimelineWindow] = []
    while True:
        begin = dispatch.next_run_after(cursor)
        if begin is None or begin >= end:
            return windows, None
        if len(windows) == limit:
            return windows, begin
        windows.append(
            TimelineWindow(
                ident, max(begin, start), min(begin + duration, end), dry_run
            )
        )
        cursor = begin + _TICK
