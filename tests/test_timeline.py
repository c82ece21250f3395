# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The timeline: lanes of upcoming windows, the terminal chart and the picture."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from frequenz.client.dispatch.recurrence import EndCriteria, Frequency, RecurrenceRule
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch import Dispatch
from frequenz.dispatch.timeline import (
    MIN_WIDTH,
    Lane,
    compute_timeline,
    render_timeline,
    save_timeline_image,
)

from .helpers import make_dispatch

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def dispatch(ident: int, start: datetime, **kwargs: Any) -> Dispatch:
    return Dispatch(make_dispatch(ident, start_time=start, **kwargs))


def every(frequency: Frequency, interval: int = 1, **kwargs: Any) -> RecurrenceRule:
    return RecurrenceRule(frequency=frequency, interval=interval, **kwargs)


def spans_of(lane: Lane) -> list[tuple[datetime, datetime]]:
    return lane.spans()


# A mixed microgrid: two live targets of one type, a dry run of that type on the
# first target, and another type.
MIXED = [
    dispatch(1, NOW + HOUR, type="CHARGE", target=TargetIds(1, 2)),
    dispatch(2, NOW + 2 * HOUR, type="CHARGE", target=TargetIds(3)),
    dispatch(3, NOW + 3 * HOUR, type="CHARGE", target=TargetIds(1, 2), dry_run=True),
    dispatch(4, NOW + 4 * HOUR, type="CURTAIL", target=TargetIds(1, 2)),
]


def test_merge_type_groups_by_type_and_dry_run() -> None:
    timeline = compute_timeline(MIXED, now=NOW, hours=24, merge="type")
    assert [(lane.label, lane.dispatch_ids) for lane in timeline.lanes] == [
        ("CHARGE", (1, 2)),
        ("CHARGE [dry-run]", (3,)),
        ("CURTAIL", (4,)),
    ]
    live = timeline.lanes[0]
    assert [(w.dispatch_id, w.start, w.end) for w in live.windows] == [
        (1, NOW + HOUR, NOW + HOUR + 10 * MINUTE),
        (2, NOW + 2 * HOUR, NOW + 2 * HOUR + 10 * MINUTE),
    ]
    assert not any(w.dry_run for w in live.windows)
    assert all(w.dry_run for w in timeline.lanes[1].windows)


def test_merge_type_target_groups_by_type_target_and_dry_run() -> None:
    timeline = compute_timeline(MIXED, now=NOW, hours=24, merge="type-target")
    assert [(lane.label, lane.dispatch_ids) for lane in timeline.lanes] == [
        ("CHARGE → 1,2", (1,)),
        ("CHARGE → 1,2 [dry-run]", (3,)),
        ("CHARGE → 3", (2,)),
        ("CURTAIL → 1,2", (4,)),
    ]


def test_merge_none_gives_every_dispatch_a_lane() -> None:
    # Two live dispatches of the same type and target still get two lanes.
    same = [*MIXED, dispatch(5, NOW + 5 * HOUR, type="CHARGE", target=TargetIds(3))]
    timeline = compute_timeline(same, now=NOW, hours=24, merge="none")
    assert [(lane.label, lane.dispatch_ids) for lane in timeline.lanes] == [
        ("#1 CHARGE → 1,2", (1,)),
        ("#3 CHARGE → 1,2 [dry-run]", (3,)),
        ("#2 CHARGE → 3", (2,)),
        ("#5 CHARGE → 3", (5,)),
        ("#4 CURTAIL → 1,2", (4,)),
    ]


@pytest.mark.parametrize("merge", ["type", "type-target", "none"])
def test_live_and_dry_run_never_share_a_lane(merge: Any) -> None:
    twins = [
        dispatch(1, NOW + HOUR, type="T"),
        dispatch(2, NOW + HOUR, type="T", dry_run=True),
    ]
    timeline = compute_timeline(twins, now=NOW, hours=4, merge=merge)
    assert len(timeline.lanes) == 2
    for lane in timeline.lanes:
        assert {w.dry_run for w in lane.windows} == {lane.dry_run}


def test_no_duration_runs_to_the_horizon_end() -> None:
    end = NOW + 10 * HOUR
    timeline = compute_timeline(
        [
            dispatch(1, NOW - 30 * HOUR, duration=None, type="A"),  # started before
            dispatch(2, NOW + 3 * HOUR, duration=None, type="B"),  # starts inside
            dispatch(3, NOW + 11 * HOUR, duration=None, type="C"),  # after horizon
        ],
        now=NOW,
        hours=10,
    )
    assert [(lane.type, spans_of(lane)) for lane in timeline.lanes] == [
        ("A", [(NOW, end)]),
        ("B", [(NOW + 3 * HOUR, end)]),
    ]
    assert timeline.end == end


def test_zero_duration_is_an_instant() -> None:
    timeline = compute_timeline(
        [
            dispatch(
                1,
                NOW + HOUR,
                duration=timedelta(0),
                recurrence=every(Frequency.HOURLY, 2),
            )
        ],
        now=NOW,
        hours=6,
    )
    (lane,) = timeline.lanes
    assert all(w.is_instant for w in lane.windows)
    assert lane.instants() == [NOW + HOUR, NOW + 3 * HOUR, NOW + 5 * HOUR]
    assert lane.spans() == []


def test_recurring_rule_is_clipped_to_the_horizon() -> None:
    # Hourly, 20 minutes each, from 9:50: the 9:50 run is still going at 10:00
    # and the 13:50 run is cut at the horizon's end, 14:00.
    timeline = compute_timeline(
        [
            dispatch(
                7,
                NOW - 10 * MINUTE,
                duration=20 * MINUTE,
                recurrence=every(Frequency.HOURLY),
            )
        ],
        now=NOW,
        hours=4,
    )
    (lane,) = timeline.lanes
    assert [(w.start, w.end) for w in lane.windows] == [
        (NOW, NOW + 10 * MINUTE),
        (NOW + 50 * MINUTE, NOW + 70 * MINUTE),
        (NOW + 110 * MINUTE, NOW + 130 * MINUTE),
        (NOW + 170 * MINUTE, NOW + 190 * MINUTE),
        (NOW + 230 * MINUTE, NOW + 240 * MINUTE),
    ]


def test_overlapping_runs_are_all_kept_and_merged_for_drawing() -> None:
    # Every 30 minutes for an hour: every instant after the first run is covered
    # twice; the windows stay, the drawing is one bar.
    timeline = compute_timeline(
        [
            dispatch(
                1,
                NOW - 45 * MINUTE,
                duration=HOUR,
                recurrence=every(Frequency.MINUTELY, 30),
            )
        ],
        now=NOW,
        hours=3,
    )
    (lane,) = timeline.lanes
    assert [w.start for w in lane.windows] == [NOW] * 2 + [
        NOW + 15 * MINUTE + k * 30 * MINUTE for k in range(6)
    ]
    assert lane.spans() == [(NOW, NOW + 3 * HOUR)]


class CountingDispatch(Dispatch):
    """Counts how often the timeline asks for the next run."""

    calls = 0

    def next_run_after(self, after: datetime) -> datetime | None:
        type(self).calls += 1
        return super().next_run_after(after)


@pytest.mark.parametrize("years", [1, 30])
def test_a_rule_started_long_ago_costs_what_a_new_one_does(years: int) -> None:
    started = NOW.replace(hour=2) - timedelta(days=365 * years)
    old = CountingDispatch(
        make_dispatch(
            1, start_time=started, duration=HOUR, recurrence=every(Frequency.DAILY)
        )
    )
    CountingDispatch.calls = 0
    timeline = compute_timeline([old], now=NOW, hours=48)
    (lane,) = timeline.lanes
    day = timedelta(days=1)
    two_am = NOW.replace(hour=2)
    assert [(w.start, w.end) for w in lane.windows] == [
        (two_am + day, two_am + day + HOUR),
        (two_am + 2 * day, two_am + 2 * day + HOUR),
    ]
    # One look-up per window plus the one that finds the horizon's end.
    assert CountingDispatch.calls == 3


def test_a_minutely_rule_over_two_days_draws_as_one_bar() -> None:
    minutely = dispatch(
        1, NOW - 10 * HOUR, duration=MINUTE, recurrence=every(Frequency.MINUTELY)
    )
    (lane,) = compute_timeline([minutely], now=NOW, hours=48).lanes
    assert len(lane.windows) == 2880
    assert lane.spans() == [(NOW, NOW + 48 * HOUR)]


def test_windows_per_dispatch_are_bounded() -> None:
    minutely = dispatch(1, NOW, duration=MINUTE, recurrence=every(Frequency.MINUTELY))
    other = dispatch(2, NOW + HOUR, type="OTHER")
    timeline = compute_timeline([minutely, other], now=NOW, hours=48, max_windows=100)
    lanes = {lane.type: lane for lane in timeline.lanes}
    assert len(lanes["TEST"].windows) == 100
    assert timeline.truncated == {1: NOW + 100 * MINUTE}
    assert len(lanes["OTHER"].windows) == 1
    text = render_text_of(timeline)
    assert "dispatch 1: too many runs, shown until 2026-05-01 11:40" in text


def render_text_of(timeline: Any) -> str:
    from frequenz.dispatch.timeline import render_text

    return render_text(timeline, width=100)


def test_finished_deleted_inactive_and_ended_rules_have_no_lane() -> None:
    timeline = compute_timeline(
        [
            dispatch(1, NOW - 2 * HOUR, type="FINISHED"),
            Dispatch(
                make_dispatch(2, start_time=NOW + HOUR, type="DELETED"), deleted=True
            ),
            dispatch(3, NOW + HOUR, type="INACTIVE", active=False),
            dispatch(
                4,
                NOW - 48 * HOUR,
                type="ENDED",
                recurrence=every(Frequency.HOURLY, end_criteria=EndCriteria(count=3)),
            ),
            dispatch(5, NOW + HOUR, type="KEPT"),
        ],
        now=NOW,
        hours=24,
    )
    assert [lane.type for lane in timeline.lanes] == ["KEPT"]


def test_a_dispatch_that_cannot_be_scheduled_is_reported_not_fatal() -> None:
    bad = dispatch(1, NOW + HOUR, type="BAD", duration=-MINUTE)
    good = dispatch(2, NOW + HOUR, type="GOOD")
    timeline = compute_timeline([bad, good], now=NOW, hours=4)
    assert [lane.type for lane in timeline.lanes] == ["GOOD"]
    assert list(timeline.skipped) == [1]
    assert "duration must not be negative" in timeline.skipped[1]
    assert "dispatch 1: not shown: duration must not be negative" in render_text_of(
        timeline
    )


def test_client_dispatches_are_accepted() -> None:
    timeline = compute_timeline(
        [make_dispatch(1, start_time=NOW + HOUR)], now=NOW, hours=2
    )
    assert [lane.dispatch_ids for lane in timeline.lanes] == [(1,)]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"now": NOW.replace(tzinfo=None)}, "now must be timezone-aware"),
        ({"hours": 0}, "hours must be"),
        ({"hours": float("nan")}, "hours must be"),
        ({"hours": 10**9}, "hours must be"),
        ({"merge": "target"}, "merge must be one of type, type-target, none"),
        ({"max_windows": 0}, "max_windows must be positive"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], named: str) -> None:
    arguments: dict[str, Any] = {"now": NOW, **kwargs}
    with pytest.raises(ValueError, match=named):
        compute_timeline(MIXED, **arguments)


# ---- the terminal chart ----


def chart_rows(text: str, label_width: int) -> dict[str, str]:
    """The lane rows of a chart, by label, without the label."""
    rows = {}
    for line in text.splitlines()[3:]:
        if " running " in line:  # the legend ends the lanes
            break
        label = line[:label_width].rstrip()
        if label and line[label_width] == " ":
            rows[label] = line[label_width + 1 :]
    return rows


def test_text_chart_draws_each_lane_at_its_time() -> None:
    # 10 hours over 60 columns: one column is 10 minutes, an hour is 6 columns.
    dispatches = [
        dispatch(1, NOW + HOUR, duration=2 * HOUR, type="CHARGE"),
        dispatch(2, NOW + 5 * HOUR, duration=30 * MINUTE, type="CHARGE", dry_run=True),
        dispatch(3, NOW + 8 * HOUR, duration=timedelta(0), type="PING"),
    ]
    label_width = len("CHARGE [dry-run]")
    text = render_timeline(dispatches, now=NOW, hours=10, width=label_width + 1 + 60)
    lines = text.splitlines()
    assert lines[0] == "2026-05-01 10:00 → 2026-05-01 20:00 UTC (10 h, merge: type)"
    pad = " " * (label_width + 1)
    assert lines[1] == pad + "".join(f"{10 + h:02d}:00 " for h in range(10)).rstrip()
    assert lines[2] == pad + ("┬" + "─" * 5) * 10
    rows = chart_rows(text, label_width)
    assert rows == {
        "CHARGE": (" " * 6 + "█" * 12).ljust(60).rstrip(),
        "CHARGE [dry-run]": (" " * 30 + "▒" * 3).rstrip(),
        "PING": " " * 48 + "◆",
    }
    assert lines[-1] == "█ running  ▒ dry run  ◆ instant  (1 column = 10 min)"


def test_text_chart_shows_a_short_run_and_a_date_at_midnight() -> None:
    late = NOW.replace(hour=20)
    # One minute in a 48-minute column still fills the column.
    text = render_timeline(
        [dispatch(1, late + 5 * HOUR, duration=MINUTE)], now=late, hours=48, width=64
    )
    axis = text.splitlines()[1]
    assert "05-02" in axis and "05-03" in axis
    (row,) = chart_rows(text, 4).values()
    assert row.strip() == "█"
    assert row.index("█") == int(5 * 60 / 48)


@pytest.mark.parametrize("width", [MIN_WIDTH, 50, 80, 120, 200])
def test_text_chart_fits_the_width(width: int) -> None:
    text = render_timeline(MIXED, now=NOW, hours=48, merge="type-target", width=width)
    assert all(len(line) <= width for line in text.splitlines())
    # The chart area grows with the width: the tick row spans it.
    tick_row = text.splitlines()[2]
    assert len(tick_row) == width


def test_text_chart_ascii_fallback() -> None:
    text = render_timeline(
        MIXED, now=NOW, hours=12, merge="type-target", width=80, ascii=True
    )
    assert text.isascii()
    rows = chart_rows(text, len("CHARGE -> 1,2 [dry-run]"))
    assert set(rows["CHARGE -> 1,2"].strip()) == {"#"}
    assert set(rows["CHARGE -> 1,2 [dry-run]"].strip()) == {"="}


def test_text_chart_of_nothing_says_so() -> None:
    text = render_timeline([], now=NOW, hours=4, width=60)
    assert "(no dispatch runs in this horizon)" in text


def test_text_chart_rejects_a_tiny_width() -> None:
    with pytest.raises(ValueError, match="width must be at least"):
        render_timeline(MIXED, now=NOW, width=MIN_WIDTH - 1)


# ---- the picture ----

LIVE = (0x1F, 0x77, 0xB4)
DRY = (0xFF, 0x7F, 0x0E)


def load_rgb(path: Path) -> Any:
    from PIL import Image

    return Image.open(path).convert("RGB")


def close(pixel: tuple[int, ...], colour: tuple[int, int, int], slack: int = 6) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel, colour, strict=False))


def saturated(pixel: tuple[int, ...]) -> bool:
    # Lane fills are coloured; the background, grid lines and text are grey.
    return max(pixel[:3]) - min(pixel[:3]) > 40


def test_png_has_one_lane_per_identity_and_windows_where_they_run(
    tmp_path: Path,
) -> None:
    dispatches = [
        # Every lane runs at NOW + 30 h so that one pixel column crosses them all.
        dispatch(1, NOW + 12 * HOUR, duration=None, type="CHARGE"),
        dispatch(2, NOW + 24 * HOUR, duration=12 * HOUR, type="CHARGE", dry_run=True),
        dispatch(3, NOW + 6 * HOUR, duration=None, type="CURTAIL"),
        dispatch(4, NOW + 36 * HOUR, duration=timedelta(0), type="CURTAIL"),
    ]
    path = tmp_path / "timeline.png"
    placed = save_timeline_image(dispatches, path, now=NOW, hours=48)
    image = load_rgb(path)
    assert image.size == (placed.width, placed.height) == (1200, 175 + 50 * 3)
    assert len(placed.lane_centres) == 3

    def x_of(moment: datetime) -> int:
        share = (moment - NOW) / (48 * HOUR)
        return round(placed.plot_left + share * (placed.plot_right - placed.plot_left))

    # The number of lanes drawn: coloured bands crossed by one column.
    column = x_of(NOW + 30 * HOUR)
    bands, inside = 0, False
    top = round(min(placed.lane_centres) - 40)
    bottom = round(max(placed.lane_centres) + 40)
    for y in range(top, bottom):
        coloured = saturated(image.getpixel((column, y)))
        if coloured and not inside:
            bands += 1
        inside = coloured
    assert bands == 3

    charge, dry, curtail = (round(y) for y in placed.lane_centres)
    # The live CHARGE lane (top) is blue from 12 h on and white before it.
    assert close(image.getpixel((x_of(NOW + 20 * HOUR), charge)), LIVE)
    assert image.getpixel((x_of(NOW + 11 * HOUR), charge)) == (255, 255, 255)
    edge = next(
        x
        for x in range(round(placed.plot_left), round(placed.plot_right))
        if close(image.getpixel((x, charge)), LIVE)
    )
    assert abs(edge - x_of(NOW + 12 * HOUR)) <= 1
    # The dry run is hatched orange between 24 h and 36 h, nothing outside.
    dry_pixels = [
        image.getpixel((x, dry))
        for x in range(x_of(NOW + 25 * HOUR), x_of(NOW + 35 * HOUR))
    ]
    assert sum(close(p, DRY) for p in dry_pixels) > len(dry_pixels) / 2
    assert not any(close(p, LIVE) for p in dry_pixels)
    assert image.getpixel((x_of(NOW + 40 * HOUR), dry)) == (255, 255, 255)
    # CURTAIL is blue; the instant at 36 h is drawn over it in black.
    assert close(image.getpixel((x_of(NOW + 7 * HOUR), curtail)), LIVE)
    assert max(image.getpixel((x_of(NOW + 36 * HOUR), curtail))) < 80


def test_png_grows_with_the_lanes(tmp_path: Path) -> None:
    many = [dispatch(i, NOW + i * HOUR, type=f"T{i:02d}") for i in range(1, 9)]
    placed = save_timeline_image(
        many, tmp_path / "many.png", now=NOW, hours=12, merge="none"
    )
    assert load_rgb(placed.path).size == (1200, 175 + 50 * 8)
    centres = placed.lane_centres
    assert list(centres) == sorted(centres)  # first lane on top


def test_svg_is_written(tmp_path: Path) -> None:
    path = tmp_path / "timeline.svg"
    save_timeline_image(MIXED, path, now=NOW, hours=24, merge="type-target")
    content = path.read_text(encoding="utf-8")
    assert "<svg" in content
    # Live bars are blue, the dry run orange (text is drawn as paths).
    assert "#1f77b4" in content and "#ff7f0e" in content


def test_unknown_picture_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="png or svg, got 'gif'"):
        save_timeline_image(MIXED, tmp_path / "t.gif", now=NOW)


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    # A None entry makes the import fail as if matplotlib were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"frequenz-dispatch\[timeline\]"):
        save_timeline_image(MIXED, tmp_path / "t.png", now=NOW)
    assert not (tmp_path / "t.png").exists()
