# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The upcoming run windows of a microgrid's dispatches, as a chart.

`render_timeline` draws a terminal chart, `save_timeline_image` a PNG or SVG
picture (matplotlib, the `timeline` extra); both show one lane per actor
identity under a merge strategy, dry-run windows marked. `compute_timeline`
gives the lanes and windows themselves.

Example:
    ```python
    from datetime import datetime, timedelta, timezone

    from frequenz.client.dispatch.recurrence import Frequency, RecurrenceRule
    from frequenz.client.dispatch.types import Dispatch, DispatchId, TargetIds

    from frequenz.dispatch.timeline import render_timeline

    now = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
    nightly_charge = Dispatch(
        id=DispatchId(1),
        type="BATTERY_CHARGE",
        start_time=now.replace(hour=2),
        duration=timedelta(hours=3),
        target=TargetIds(7),
        active=True,
        dry_run=False,
        payload={},
        recurrence=RecurrenceRule(frequency=Frequency.DAILY, interval=1),
        create_time=now,
        update_time=now,
    )
    chart = render_timeline([nightly_charge], now=now, hours=24, width=80)
    assert "BATTERY_CHARGE" in chart
    print(chart)
    ```
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from frequenz.client.dispatch.types import Dispatch as ClientDispatch

from ._image import TimelineImage, save_image
from ._text import MIN_WIDTH, render_text
from ._windows import (
    DEFAULT_MAX_WINDOWS,
    MERGE_CHOICES,
    Lane,
    Merge,
    Timeline,
    TimelineWindow,
    compute_timeline,
)

__all__ = [
    "DEFAULT_MAX_WINDOWS",
    "MERGE_CHOICES",
    "MIN_WIDTH",
    "Lane",
    "Merge",
    "Timeline",
    "TimelineImage",
    "TimelineWindow",
    "compute_timeline",
    "render_text",
    "render_timeline",
    "save_image",
    "save_timeline_image",
]


def render_timeline(
    dispatches: Iterable[ClientDispatch],
    *,
    now: datetime,
    hours: float = 48,
    merge: Merge = "type",
    width: int = 100,
    ascii: bool = False,
) -> str:
    """Draw the upcoming windows of dispatches as a terminal chart.

    Args:
        dispatches: The dispatches (client dispatches are accepted too).
        now: The horizon's start (timezone-aware).
        hours: The horizon's length in hours.
        merge: How dispatches share lanes: `type`, `type-target` or `none`.
        width: The number of columns available (at least `MIN_WIDTH`).
        ascii: Draw with ASCII characters only.

    Returns:
        The chart: a header, the time axis, one row per lane, a legend and notes
            on dispatches that could not be shown in full.

    Raises:
        ValueError: If an argument is out of range; the message names it.
    """
    timeline = compute_timeline(dispatches, now=now, hours=hours, merge=merge)
    return render_text(timeline, width=width, ascii=ascii)


def save_timeline_image(
    dispatches: Iterable[ClientDispatch],
    path: str | Path,
    *,
    now: datetime,
    hours: float = 48,
    merge: Merge = "type",
    image_format: str | None = None,
) -> TimelineImage:
    """Draw the upcoming windows of dispatches into a PNG or SVG file.

    Args:
        dispatches: The dispatches (client dispatches are accepted too).
        path: The file to write; its suffix (`.png`, `.svg`) picks the format.
        now: The horizon's start (timezone-aware).
        hours: The horizon's length in hours.
        merge: How dispatches share lanes: `type`, `type-target` or `none`.
        image_format: `png` or `svg`, to override the suffix.

    Returns:
        Where the horizon and the lanes are in the picture.

    Raises:
        ImportError: If matplotlib is not installed (the message names the
            `timeline` extra).
        ValueError: If an argument is out of range or the format is unknown; the
            message names it.
    """
    timeline = compute_timeline(dispatches, now=now, hours=hours, merge=merge)
    return save_image(timeline, path, image_format=image_format)
