# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A timeline drawn as a PNG or SVG picture with matplotlib (the `timeline` extra)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._windows import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LIVE_COLOUR: Final = "#1f77b4"
"""The fill of live runs (blue)."""

DRY_RUN_COLOUR: Final = "#ff7f0e"
"""The fill of dry runs (orange, hatched)."""

INSTANT_COLOUR: Final = "#222222"
"""The marker of zero-duration runs."""

FORMATS: Final = ("png", "svg")
"""The picture formats, chosen by the file's suffix."""

_UTC: Final = timezone.utc
_DPI: Final = 100
_WIDTH_INCHES: Final = 12.0
_BAR_HEIGHT: Final = 0.6
_MISSING_EXTRA: Final = (
    "drawing a timeline picture needs matplotlib, which the 'timeline' extra "
    "installs: pip install 'frequenz-dispatch[timeline]'"
)


@dataclass(frozen=True, slots=True)
class TimelineImage:
    """Where a saved timeline picture put things, in pixels.

    Coordinates are measured from the picture's top-left corner; for an SVG,
    a pixel is 1/100 inch.
    """

    path: Path
    """The file written."""

    width: int
    """The picture's width."""

    height: int
    """The picture's height."""

    plot_left: float
    """The horizontal position of the horizon's start."""

    plot_right: float
    """The horizontal position of the horizon's end."""

    lane_centres: tuple[float, ...]
    """The vertical position of each lane's middle, in `Timeline.lanes` order."""


def save_image(
    timeline: Timeline, path: str | Path, *, image_format: str | None = None
) -> TimelineImage:
    """Draw a timeline into a PNG or SVG file.

    One horizontal lane per actor identity, top to bottom in the timeline's
    order; live runs are blue bars, dry runs hatched orange bars, zero-duration
    runs black ticks; the time axis is in UTC. The picture is 1200 px wide and
    175 + 50 px per lane high (100 px per inch).

    Args:
        timeline: The timeline to draw.
        path: The file to write.
        image_format: `png` or `svg`; by default the suffix of `path`.

    Returns:
        Where the horizon and the lanes are in the picture.

    Raises:
        ImportError: If matplotlib is not installed (the message names the extra).
        ValueError: If the format is neither `png` nor `svg`.
    """
    target = Path(path)
    chosen = (image_format or target.suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise ValueError(
            f"picture format must be png or svg, got {chosen or 'no suffix'!r}"
            f" for {str(target)!r}"
        )
    try:
        from matplotlib import dates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as error:
        raise ImportError(_MISSING_EXTRA) from error

    # matplotlib.dates has no annotations; these are its documented signatures.
    mdates: Any = dates
    lanes = timeline.lanes
    count = len(lanes)
    # A Figure with its own Agg canvas leaves pyplot's global backend alone, so
    # an application with a GUI backend is not disturbed.
    # Heights in quarter inches are exact in binary, so the picture is exactly
    # 100 px per inch, with no pixel lost to rounding.
    figure = Figure(figsize=(_WIDTH_INCHES, 1.75 + 0.5 * max(count, 1)), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes: Axes = figure.add_subplot()
    left = float(mdates.date2num(timeline.start))
    right = float(mdates.date2num(timeline.end))
    for index, lane in enumerate(lanes):
        y = count - 1 - index
        spans = [
            (
                float(mdates.date2num(a)),
                float(mdates.date2num(b)) - float(mdates.date2num(a)),
            )
            for a, b in lane.spans()
        ]
        style: dict[str, Any] = (
            {"facecolors": DRY_RUN_COLOUR, "edgecolor": "#8a4000", "hatch": "///"}
            if lane.dry_run
            else {"facecolors": LIVE_COLOUR, "edgecolor": LIVE_COLOUR}
        )
        axes.broken_barh(
            spans, (y - _BAR_HEIGHT / 2, _BAR_HEIGHT), linewidth=0, **style
        )
        instants = [float(mdates.date2num(m)) for m in lane.instants()]
        if instants:
            axes.vlines(instants, y - 0.4, y + 0.4, colors=INSTANT_COLOUR, linewidth=2)
    axes.set_xlim(left, right)
    axes.set_ylim(-0.6, max(count, 1) - 0.4)
    axes.set_yticks(range(count), [_short(lane.label) for lane in reversed(lanes)])
    locator = mdates.AutoDateLocator(tz=_UTC)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=_UTC))
    axes.set_xlabel("time (UTC)")
    axes.grid(axis="x", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.set_title(
        f"Dispatch timeline {timeline.start.astimezone(_UTC):%Y-%m-%d %H:%M} to "
        f"{timeline.end.astimezone(_UTC):%Y-%m-%d %H:%M} UTC "
        f"(merge: {timeline.merge})"
    )
    if not lanes:
        axes.text(
            0.5,
            0.5,
            "no dispatch runs in this horizon",
            transform=axes.transAxes,
            ha="center",
            va="center",
        )
    axes.legend(
        handles=[
            Patch(facecolor=LIVE_COLOUR, label="running"),
            Patch(
                facecolor=DRY_RUN_COLOUR,
                edgecolor="#8a4000",
                hatch="///",
                label="dry run",
            ),
            Line2D([], [], color=INSTANT_COLOUR, linewidth=2, label="instant"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )
    figure.set_layout_engine("constrained")
    # Layout first, so the positions measured are those of the saved picture.
    figure.canvas.draw()
    width_px, height_px = figure.canvas.get_width_height()
    x0 = float(axes.transData.transform((left, 0))[0])
    x1 = float(axes.transData.transform((right, 0))[0])
    centres = tuple(
        float(height_px - axes.transData.transform((left, count - 1 - i))[1])
        for i in range(count)
    )
    figure.savefig(target, format=chosen, dpi=_DPI)
    return TimelineImage(target, width_px, height_px, x0, x1, centres)


def _short(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
