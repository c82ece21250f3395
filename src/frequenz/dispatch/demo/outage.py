# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The outage scene: the service goes away, the schedule goes on, nothing doubles.

| when (s) | what                                                                |
| -------- | ------------------------------------------------------------------- |
| 33       | create `BATTERY_CHARGE` "charge-C" for 46 - 58 (into the cache too) |
| 36       | the service stops: its port no longer listens                       |
| 40       | the heat pump's window ends on time, offline                        |
| 44       | the Dispatcher restarts with the service down: from the cache       |
| 46       | charge-C starts on time, from the cache, through its actor          |
| 47       | another endpoint on the same database changes charge-C's power      |
| 48       | the service is back (same database, same port); the Dispatcher      |
|          | re-syncs: an Updated for charge-C, its actor reconfigured, and no   |
|          | Created or actor start a second time                                |
| 58       | charge-C stops on time                                              |
| 60       | the tally                                                           |

The reconnect comes with the sync's next retry, which its back-off (and gRPC's
own) places up to a few seconds after the service is back, whatever the speed:
the restart resets both, so that the wait stays short. The restart comes well
after the heat pump's window (a window running at a restart is started again by
the new Dispatcher, as after a reboot, which is correct but not this scene).
"""

from __future__ import annotations

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.types import DispatchId

from .journal import MICROGRID_ID, Journal
from .script import Cue, create_dispatch
from .stage import Stage


async def play_outage(stage: Stage, journal: Journal, cue: Cue) -> None:
    """Play the outage scene (after the first part of the script).

    Args:
        stage: The service and the Dispatcher.
        journal: Where to tell what is done.
        cue: The script's times.
    """
    await cue.at(33)
    charge_c = await create_dispatch(
        stage.dispatcher.client,
        journal,
        cue,
        name="charge-C",
        dispatch_type="BATTERY_CHARGE",
        start=46,
        duration=12,
        power_kw=40,
    )

    await cue.at(36)
    port = stage.service.port
    journal.log("service", f"stopping the Dispatch API service on port {port}")
    await stage.stop_service()
    listening = await stage.is_listening()
    journal.log(
        "service",
        f"service stopped: port {port} "
        + ("still accepts connections!" if listening else "refuses connections"),
        count="service stopped",
    )

    await cue.at(44)
    journal.log(
        "action",
        "restart the Dispatcher while the service is down (as after a reboot)",
        count="action restart",
    )
    dispatcher = await stage.restart_dispatcher()
    status = dispatcher.status
    journal.log(
        "setup",
        f"dispatcher {journal.dispatcher_number} ready: {status.dispatches}"
        f" dispatches from the {status.source.value}, connected={status.connected}",
    )

    await cue.at(47)
    async with stage.other_endpoint() as (url, client):
        journal.log(
            "action",
            f"meanwhile, through another endpoint ({url}) on the same database:"
            f" update #{charge_c} charge-C: power_kw 40 -> 60",
            count="action update",
        )
        await client.update(
            microgrid_id=MicrogridId(MICROGRID_ID),
            dispatch_id=DispatchId(charge_c),
            new_fields={"payload": {"name": "charge-C", "power_kw": 60}},
        )

    await cue.at(48)
    await stage.start_service()
    journal.log(
        "service",
        f"service back on port {stage.service.port}, same database",
        count="service started",
    )
    journal.mark("service back")

    await cue.at(60)
    journal.log("setup", tally(journal))


def tally(journal: Journal) -> str:
    """Count what came since the service is back, and the duplicates of the run.

    Args:
        journal: What the demo saw.

    Returns:
        One line.
    """
    since = journal.since("service back")
    twice = sorted(f"#{i}" for i, n in journal.created.items() if n > 1)
    # Per Dispatcher: a restart starts the actors of running windows again.
    started_twice = sorted(
        f"{name} (dispatcher {number})"
        for (number, name), n in journal.actor_starts.items()
        if n > 1
    )
    return (
        "since the service is back: "
        f"created={since['lifecycle created']} updated={since['lifecycle updated']}"
        f" deleted={since['lifecycle deleted']};"
        f" actors started={since['actor started']}"
        f" reconfigured={since['actor reconfigured']}"
        f" stopped={since['actor stopped']};"
        f" Created twice: {', '.join(twice) or 'none'};"
        f" actor started twice by a Dispatcher: {', '.join(started_twice) or 'none'}"
    )
