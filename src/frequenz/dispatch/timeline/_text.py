# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A timeline drawn with characters, for a terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from ._windows import Lane, Timeline

MIN_WIDTH: Final = 30
"""The narrowest chart, in columns."""

_UTC: Final = timezone.utc
_HOUR: Final = timedelta(hours=1)
# Label ticks are "HH:MM" (or "MM-DD" at midnight) and need a gap after them.
_LABEL_COLUMNS: Final = 6
_LABEL_STEPS_HOURS: Final = (1, 2, 3, 4, 6, 12, 24, 48, 168)


@dataclass(frozen=True, slots=True)
class _Glyphs:
    live: str
    dry: str
    instant: str
    tick: str
    rule: str
    empty: str


_UNICODE: Final = _Glyphs(live="█", dry="▒", instant="◆", tick="┬", rule="─", empty=" ")
_ASCII: Final = _Glyphs(live="#", dry="=", instant="|", tick="+", rule="-", empty=" ")


def render_text(timeline: Timeline, *, width: int = 100, ascii: bool = False) -> str:
    """Draw a timeline as lines of text.

    One row per lane, under a time axis in UTC with a tick at every hour (or at
    every labelled hour when hours are narrower than two columns). A column is
    filled when the lane's actor runs at any time inside it, so a short run is
    never lost to the resolution.

    Args:
        timeline: The timeline to draw.
        width: The number of columns available, label included.
        ascii: Draw with ASCII characters only.

    Returns:
        The chart, lines joined by newlines, no line longer than `width`.

    Raises:
        ValueError: If `width` is less than `MIN_WIDTH`.
    """
    if width < MIN_WIDTH:
        raise ValueError(f"width must be at least {MIN_WIDTH} columns, got {width}")
    glyphs = _ASCII if ascii else _UNICODE
    labels = [
        lane.label.replace("→", "->") if ascii else lane.label
        for lane in timeline.lanes
    ]
    label_width = min(max((len(label) for label in labels), default=0), width // 3)
    label_width = max(label_width, 4)
    columns = width - label_width - 1
    span = timeline.end - timeline.start
    step = span / columns
    arrow = "->" if ascii else "→"
    lines = [
        f"{_stamp(timeline.start)} {arrow} {_stamp(timeline.end)} UTC"
        f" ({_hours_text(span)} h, merge: {timeline.merge})"
    ]
    tick_row, label_row = _axis(timeline.start, timeline.end, columns, glyphs)
    pad = " " * (label_width + 1)
    lines.append(pad + label_row)
    lines.append(pad + tick_row)
    for lane, label in zip(timeline.lanes, labels, strict=True):
        row = _row(lane, timeline.start, step, columns, glyphs)
        lines.append(f"{_fit(label, label_width, ascii)} {row}")
    if not timeline.lanes:
        lines.append(pad + "(no dispatch runs in this horizon)")
    lines.append(
        f"{glyphs.live} running  {glyphs.dry} dry run  {glyphs.instant} instant"
        f"  (1 column = {_duration_text(step)})"
    )
    for ident, cut in sorted(timeline.truncated.items()):
        lines.append(f"dispatch {ident}: too many runs, shown until {_stamp(cut)}")
    for ident, reason in sorted(timeline.skipped.items()):
        lines.append(f"dispatch {ident}: not shown: {reason}")
    return "\n".join(line.rstrip()[:width] for line in lines)


def _row(
    lane: Lane, start: datetime, step: timedelta, columns: int, glyphs: _Glyphs
) -> str:
    cells = [glyphs.empty] * columns
    fill = glyphs.dry if lane.dry_run else glyphs.live
    for moment in lane.instants():
        cells[_column(moment, start, step, columns)] = glyphs.instant
    for begin, end in lane.spans():
        first = _column(begin, start, step, columns)
        # `end` is excluded: a run ending exactly on a column border leaves the
        # next column empty.
        last = _column(end - timedelta(microseconds=1), start, step, columns)
        for index in range(first, last + 1):
            cells[index] = fill
    return "".join(cells)


def _column(moment: datetime, start: datetime, step: timedelta, columns: int) -> int:
    return min(max(int((moment - start) / step), 0), columns - 1)


def _axis(
    start: datetime, end: datetime, columns: int, glyphs: _Glyphs
) -> tuple[str, str]:
    step = (end - start) / columns
    hour_columns = _HOUR / step
    label_hours = next(
        (h for h in _LABEL_STEPS_HOURS if h * hour_columns >= _LABEL_COLUMNS),
        _LABEL_STEPS_HOURS[-1],
    )
    ticks = [glyphs.rule] * columns
    labels = [" "] * columns
    first_hour = start.astimezone(_UTC).replace(minute=0, second=0, microsecond=0)
    if first_hour < start:
        first_hour += _HOUR
    moment = first_hour
    while moment < end:
        column = int((moment - start) / step)
        labelled = (
            (moment.hour % label_hours == 0)
            if label_hours < 24
            else (moment.hour == 0 and _day_index(moment) % (label_hours // 24) == 0)
        )
        if hour_columns >= 2 or labelled:
            ticks[column] = glyphs.tick
        text = moment.strftime("%m-%d" if moment.hour == 0 else "%H:%M")
        # A label that does not fit whole is left out rather than cut.
        if labelled and column + len(text) <= columns and _free(labels, column, text):
            labels[column : column + len(text)] = text
        moment += _HOUR
    return "".join(ticks), "".join(labels)


def _free(labels: list[str], column: int, text: str) -> bool:
    # One blank column before a label keeps two labels from touching.
    before = labels[max(column - 1, 0) : column + len(text)]
    return all(cell == " " for cell in before)


def _day_index(moment: datetime) -> int:
    return moment.toordinal()


def _fit(label: str, width: int, ascii: bool) -> str:
    if len(label) <= width:
        return label.ljust(width)
    return label[: width - 1] + ("~" if ascii else "…")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(_UTC).strftime("%Y-%m-%d %H:%M")


def _hours_text(span: timedelta) -> str:
    hours = span / _HOUR
    return f"{hours:g}"


def _duration_text(step: timedelta) -> str:
    seconds = step.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"
