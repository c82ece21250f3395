# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The demo's scenario: its actor, its timeline of dispatches, and playing it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from frequenz.api.dispatch.v1 import dispatch_pb2
from frequenz.channels import Receiver
from frequenz.sdk.actor import Actor
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from typing_extensions import override

from .. import DispatchInfo
from .._client import DispatchClient
from ..local_service import DispatchStorage
from .journal import MICROGRID_ID, Journal


class DemoActor(Actor):
    """A small actor that only tells what it is doing."""

    def __init__(
        self,
        label: str,
        info: DispatchInfo,
        updates: Receiver[DispatchInfo],
        journal: Journal,
    ) -> None:
        """Create the actor.

        Args:
            label: Its name.
            info: The configuration of the dispatch it was created for.
            updates: Where new configurations arrive.
            journal: Where to tell what it does.
        """
        super().__init__(name=label)
        self._label = label
        self._info = info
        self._updates = updates
        self._journal = journal

    @override
    async def _run(self) -> None:
        self._journal.actor(self._label, "started", self._info)
        try:
            async for info in self._updates:
                self._info = info
                self._journal.actor(self._label, "reconfigured", info)
        except asyncio.CancelledError:
            self._journal.actor(self._label, "stopped", self._info)
            raise


def actor_factory(
    dispatch_type: str, journal: Journal
) -> Callable[[DispatchInfo, Receiver[DispatchInfo]], Awaitable[Actor]]:
    """Return a factory of `DemoActor`s for one dispatch type.

    Args:
        dispatch_type: The type the actors are for.
        journal: Where they tell what they do.

    Returns:
        The factory, as `Dispatcher.start_managing` wants it.
    """
    made = 0

    async def make(info: DispatchInfo, updates: Receiver[DispatchInfo]) -> Actor:
        nonlocal made
        made += 1
        return DemoActor(
            f"{dispatch_type.lower()}-actor-{made}", info, updates, journal
        )

    return make


@dataclass(frozen=True)
class Timeline:
    """The demo's schedule, in seconds from its start, compressed by `speed`."""

    speed: float

    def offset(self, seconds: float) -> float:
        """Return when something planned at `seconds` (at speed 1) happens.

        Args:
            seconds: The time at speed 1.

        Returns:
            The time at this speed; at least 1 s, so that a start time given
                at the beginning is still in the future when it arrives.
        """
        return max(1.0, seconds / self.speed)

    def duration(self, seconds: float) -> timedelta:
        """Return a duration planned as `seconds` at speed 1.

        Args:
            seconds: The duration at speed 1.

        Returns:
            The duration at this speed, in whole seconds (as the API keeps them).
        """
        return timedelta(seconds=max(1, round(seconds / self.speed)))


def seed_recurring(database: Path, timeline: Timeline, origin: datetime) -> None:
    """Store a dispatch that has been recurring since before the demo.

    It runs every minute for 20 s (at speed 1) and its first run was 40 s before
    the demo, so its next run starts 20 s into the demo. The API accepts no
    start time in the past, so it is written to the database directly, before
    the service starts.

    Args:
        database: The service's database file.
        timeline: The demo's timeline.
        origin: When the demo's timeline starts.
    """
    next_run = origin + timedelta(seconds=math.ceil(timeline.offset(20)))
    first_run = next_run - timedelta(minutes=1)
    payload = Struct()
    payload.update({"name": "boost", "target_celsius": 55})
    data = dispatch_pb2.DispatchData(
        type="HEAT_PUMP_BOOST",
        start_time=Timestamp(seconds=int(first_run.timestamp())),
        duration=int(timeline.duration(20).total_seconds()),
        target=dispatch_pb2.TargetComponents(
            component_ids=dispatch_pb2.TargetComponents.IdSet(ids=[17])
        ),
        is_active=True,
        is_dry_run=False,
        payload=payload,
        recurrence=dispatch_pb2.RecurrenceRule(
            freq=dispatch_pb2.RecurrenceRule.FREQUENCY_MINUTELY, interval=1
        ),
    )
    storage = DispatchStorage(database)
    try:
        storage.insert(MICROGRID_ID, data, time.time_ns() // 1_000)
    finally:
        storage.close()


async def consume(receiver: Receiver[Any], handle: Callable[[Any], None]) -> None:
    """Hand every message of a receiver to a function, until the receiver ends.

    Args:
        receiver: The receiver.
        handle: Called with each message.
    """
    async for message in receiver:
        handle(message)


@dataclass(frozen=True)
class Cue:
    """When the script's steps happen: the timeline, from the script's start."""

    timeline: Timeline
    """The demo's timeline."""
    origin: datetime
    """The wall-clock time of the script's start."""
    began: float
    """The event loop's time of the script's start."""

    @classmethod
    def now(cls, timeline: Timeline) -> Cue:
        """Return the cue of a script that starts now.

        Args:
            timeline: The demo's timeline.

        Returns:
            The cue.
        """
        return cls(
            timeline, datetime.now(timezone.utc), asyncio.get_running_loop().time()
        )

    def when(self, seconds: float) -> datetime:
        """Return the wall-clock time of `seconds` (at speed 1) into the script.

        Args:
            seconds: The time at speed 1.

        Returns:
            The time.
        """
        return self.origin + timedelta(seconds=self.timeline.offset(seconds))

    async def at(self, seconds: float) -> None:
        """Wait until `seconds` (at speed 1) into the script.

        Args:
            seconds: The time at speed 1.
        """
        loop = asyncio.get_running_loop()
        wait = self.began + self.timeline.offset(seconds) - loop.time()
        await asyncio.sleep(max(0.0, wait))


async def create_dispatch(
    client: DispatchClient,
    journal: Journal,
    cue: Cue,
    *,
    name: str,
    dispatch_type: str,
    start: float,
    duration: float,
    **payload: Any,
) -> int:
    """Create one of the demo's dispatches, and tell so.

    Args:
        client: The client to create it with.
        journal: Where to tell.
        cue: The script's times.
        name: Its payload's name.
        dispatch_type: Its type.
        start: When it starts, at speed 1.
        duration: How long it runs, at speed 1.
        **payload: The rest of its payload.

    Returns:
        Its id.
    """
    start_time = cue.when(start)
    length = cue.timeline.duration(duration)
    journal.log(
        "action",
        f"create {dispatch_type} {name}: starts at {journal.at(start_time)},"
        f" runs {length.total_seconds():.0f} s",
        count="action create",
    )
    created = await client.create(
        microgrid_id=MICROGRID_ID,
        type=dispatch_type,
        start_time=start_time,
        duration=length,
        target=[1, 2] if dispatch_type == "BATTERY_CHARGE" else [5],
        payload={"name": name, **payload},
    )
    return int(created.id)


async def play_script(client: DispatchClient, journal: Journal, cue: Cue) -> None:
    """Create, update and delete the demo's first dispatches at their times.

    Args:
        client: The client of the Dispatcher.
        journal: Where to tell what is done.
        cue: The script's times.
    """

    async def create(
        name: str, dispatch_type: str, start: float, duration: float, **payload: Any
    ) -> int:
        return await create_dispatch(
            client,
            journal,
            cue,
            name=name,
            dispatch_type=dispatch_type,
            start=start,
            duration=duration,
            **payload,
        )

    await create("charge-A", "BATTERY_CHARGE", 3, 8, power_kw=50)
    await create("charge-B", "BATTERY_CHARGE", 7, 10, power_kw=80)
    fleet = await create("ev-fleet", "EV_CHARGING", 5, 30, max_current_a=16)
    visitor = await create("ev-visitor", "EV_CHARGING", 9, 30, max_current_a=10)

    await cue.at(13)
    journal.log(
        "action", f"update #{fleet} ev-fleet: max_current_a 16 -> 32", "action update"
    )
    await client.update(
        microgrid_id=MICROGRID_ID,
        dispatch_id=fleet,
        new_fields={"payload": {"name": "ev-fleet", "max_current_a": 32}},
    )

    await cue.at(24)
    journal.log(
        "action", f"delete #{visitor} ev-visitor while it runs", "action delete"
    )
    await client.delete(microgrid_id=MICROGRID_ID, dispatch_id=visitor)
