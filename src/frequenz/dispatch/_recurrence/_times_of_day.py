# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""At which seconds of the day a recurrence rule has runs, on a day that has any.

Daily and longer frequencies run at the same times every day they run on (the
by-hours and by-minutes combined, or the start's hour and minute). Hourly and
minutely rules run on an interval grid of hour or minute slots counted from the
start; since an interval need not divide the day, the first slot of a day shifts
from day to day. See `_calendar` for how days and instants are numbered.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from functools import lru_cache

from frequenz.client.dispatch.recurrence import Frequency

from ._calendar import DAY

# Read once: accessing an Enum member through its class is slow in Python 3.11.
_MINUTELY, _HOURLY = Frequency.MINUTELY, Frequency.HOURLY


class TimesOfDay:
    """The seconds of the day at which a rule runs, on the days it runs at all."""

    __slots__ = (
        "evenly_spaced",
        "fixed_times",
        "hours",
        "interval",
        "max_per_day",
        "minutes",
        "second",
        "slots_per_day",
        "start_slot",
    )

    def __init__(
        self,
        frequency: Frequency,
        interval: int,
        start: int,
        byhours: Sequence[int],
        byminutes: Sequence[int],
    ) -> None:
        """Prepare the times of day of a rule.

        Args:
            frequency: The rule's frequency.
            interval: The rule's interval, at least 1.
            start: The rule's first instant, in seconds (see `_calendar`).
            byhours: The rule's by-hour filter (empty for none).
            byminutes: The rule's by-minute filter (empty for none).
        """
        second_of_day = start % DAY
        hour, minute = second_of_day // 3600, (second_of_day // 60) % 60

        self.interval = interval
        """The rule's interval, in slots for hourly and minutely rules."""

        self.second = second_of_day % 60
        """The second of the minute of every run: the start's (by-fields keep it)."""

        self.hours: tuple[int, ...] | None = tuple(sorted(set(byhours))) or None
        """The by-hour filter, ascending, or None for none."""

        self.minutes: tuple[int, ...] | None = tuple(sorted(set(byminutes))) or None
        """The by-minute filter, ascending, or None for none; for hourly rules the
        minutes each hour slot expands to (the start's minute without a filter)."""

        self.slots_per_day = 0
        """24 for hourly, 1440 for minutely rules, 0 for daily and longer ones."""

        self.start_slot = 0
        """For hourly and minutely rules, the start's slot counted from day 0."""

        self.fixed_times: tuple[int, ...] = ()
        """For daily and longer rules, the seconds of the day of every run day,
        without `second`."""

        self.evenly_spaced = False
        """Whether each day's runs are an arithmetic range (hourly and minutely
        rules without filters, or hourly ones expanding to a single minute)."""

        self.max_per_day = 0
        """The most runs any one day can have."""

        if frequency in (_MINUTELY, _HOURLY):
            self.slots_per_day = 1440 if frequency == _MINUTELY else 24
            self.start_slot = start // (DAY // self.slots_per_day)
            self.max_per_day = -(-self.slots_per_day // interval)
            # By-minutes filter minutely slots, but only add a fixed offset to a
            # lone hourly one.
            self.evenly_spaced = self.hours is None and self.minutes is None
            if frequency == _HOURLY:
                minutes = self.minutes = self.minutes or (minute,)
                self.max_per_day *= len(minutes)
                self.evenly_spaced = self.hours is None and len(minutes) == 1
        else:
            self.fixed_times = tuple(
                sorted(
                    (h * 3600) + (m * 60)
                    for h in self.hours or (hour,)
                    for m in self.minutes or (minute,)
                )
            )
            self.max_per_day = len(self.fixed_times)

    def first_slot(self, day: int) -> int:
        """Return the first slot of a day that is on an hourly or minutely grid.

        Days with the same first slot have the same times of day.

        Args:
            day: The day number.

        Returns:
            The slot (hour or minute of the day), below `interval`.
        """
        return (self.start_slot - (self.slots_per_day * day)) % self.interval

    def on(self, day: int) -> Sequence[int]:
        """Return the run times on a day that passes the day filters.

        Args:
            day: The day number.

        Returns:
            Seconds of the day, ascending, without the constant `second`; empty
                if no slot of an hourly or minutely grid passes the filters.
        """
        if not self.slots_per_day:
            return self.fixed_times
        first = self.first_slot(day)
        if self.evenly_spaced:
            slot = DAY // self.slots_per_day
            offset = self.minutes[0] * 60 if self.minutes else 0
            return range((first * slot) + offset, DAY, self.interval * slot)
        return _filtered_slot_times(
            self.slots_per_day, self.interval, first, self.hours, self.minutes
        )

    def slot_day(self, day: int, forward: bool) -> int:
        """Return the nearest day from `day` on that holds a slot of the grid.

        Only meaningful for hourly and minutely rules whose interval is longer
        than a day, the others have slots every day.

        Args:
            day: The day number to start from.
            forward: Whether to look forward (else backward) in time.

        Returns:
            The day number.
        """
        per_day, interval = self.slots_per_day, self.interval
        if forward:
            edge = day * per_day
            return (edge + ((self.start_slot - edge) % interval)) // per_day
        edge = (day * per_day) + per_day - 1
        return (edge - ((edge - self.start_slot) % interval)) // per_day


@lru_cache(maxsize=1024)
def _filtered_slot_times(
    slots_per_day: int,
    interval: int,
    first: int,
    hours: tuple[int, ...] | None,
    minutes: tuple[int, ...] | None,
) -> Sequence[int]:
    """Return the seconds of the day of an hourly or minutely rule's runs.

    Shared between rules (hence no start second in it): for intervals dividing the
    day, one entry serves every day of every rule with the same shape. Only rules
    with by-hour or by-minute filters get here; a packed array keeps a full day of
    minutes at under 6 kB, so the whole cache stays within a few megabytes.

    Args:
        slots_per_day: 24 for hourly, 1440 for minutely rules.
        interval: The interval, in hours or minutes.
        first: The first hour or minute of the day on the interval grid.
        hours: The by-hour filter, if any.
        minutes: The by-minute filter (minutely) or expansion (hourly, always set).

    Returns:
        Seconds of the day, ascending.
    """
    if slots_per_day == 24:
        return array(
            "i",
            (
                (hour * 3600) + (minute * 60)
                for hour in range(first, 24, interval)
                if hours is None or hour in hours
                for minute in minutes or ()
            ),
        )
    return array(
        "i",
        (
            slot * 60
            for slot in range(first, 1440, interval)
            if (hours is None or slot // 60 in hours)
            and (minutes is None or slot % 60 in minutes)
        ),
    )
