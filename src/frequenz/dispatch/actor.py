# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The dispatch actor.

Deprecated:
    `DispatchingActor` did the scheduling inside an SDK actor. Use
    [`Dispatcher`][frequenz.dispatch.Dispatcher] (or
    `frequenz.dispatch._bg_service.DispatchScheduler`) instead.
"""

import asyncio

from frequenz.channels import Sender, select, selected_from
from frequenz.client.common.microgrid import MicrogridId
from frequenz.sdk.actor import Actor
from typing_extensions import override

from ._api import DispatchApi
from ._bg_service import DispatchScheduler
from ._deprecation import warn_deprecated
from ._dispatch import Dispatch
from ._event import DispatchEvent


class DispatchingActor(Actor):
    """Dispatch actor.

    This actor is responsible for handling dispatches for a microgrid. It keeps in
    sync with the API and forwards every type's lifecycle and running-state events
    to the given senders.

    Deprecated:
        Use [`Dispatcher`][frequenz.dispatch.Dispatcher] instead: it gives
        receivers per dispatch type and manages actors.
    """

    def __init__(
        self,
        microgrid_id: MicrogridId | int,
        client: DispatchApi,
        lifecycle_updates_sender: Sender[DispatchEvent],
        running_state_change_sender: Sender[Dispatch],
    ) -> None:
        """Initialize the actor.

        Args:
            microgrid_id: The microgrid ID to handle dispatches for.
            client: The client to use for fetching dispatches.
            lifecycle_updates_sender: A sender for dispatch lifecycle events.
            running_state_change_sender: A sender for dispatch running state changes.
        """
        warn_deprecated(
            "DispatchingActor",
            "use frequenz.dispatch.Dispatcher, which gives receivers per dispatch "
            "type and manages actors",
        )
        super().__init__()
        self._scheduler = DispatchScheduler(microgrid_id, client)
        self._lifecycle_sender = lifecycle_updates_sender
        self._running_sender = running_state_change_sender

    @override
    async def _run(self) -> None:
        lifecycle = self._scheduler._new_lifecycle_events_receiver_for_all_types()
        running = self._scheduler._new_running_state_event_receiver_for_all_types()
        self._scheduler.start()
        try:
            async for selected in select(lifecycle, running):
                if selected_from(selected, lifecycle):
                    await self._lifecycle_sender.send(selected.message)
                elif selected_from(selected, running):
                    await self._running_sender.send(selected.message)
        finally:
            await asyncio.shield(self._scheduler.stop())
