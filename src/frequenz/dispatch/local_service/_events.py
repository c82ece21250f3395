# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Fan-out of dispatch change events to stream subscribers.

Every subscriber has its own unbounded queue, so publishing never waits: a
slow subscriber only grows its own backlog and never loses events or holds
up anybody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from frequenz.api.dispatch.v1.dispatch_pb2 import StreamMicrogridDispatchesResponse


class Subscription:
    """The events of one microgrid for one subscriber, in publishing order.

    Iterating ends when the broker is closed.
    """

    def __init__(self, broker: EventBroker, microgrid_id: int) -> None:
        """Create a subscription; use `EventBroker.subscribe()` instead.

        Args:
            broker: The broker it belongs to.
            microgrid_id: The microgrid whose events it receives.
        """
        self._broker = broker
        self.microgrid_id = microgrid_id
        """The microgrid whose events this subscription receives."""
        # `None` marks the end of the stream.
        self._queue: asyncio.Queue[StreamMicrogridDispatchesResponse | None] = (
            asyncio.Queue()
        )

    def put(self, event: StreamMicrogridDispatchesResponse | None) -> None:
        """Queue an event (or `None` for the end); never blocks.

        Args:
            event: The event, or `None` to end the subscription.
        """
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[StreamMicrogridDispatchesResponse]:
        """Iterate over the events.

        Returns:
            An iterator that ends when the broker is closed.
        """
        return self._events()

    async def _events(self) -> AsyncIterator[StreamMicrogridDispatchesResponse]:
        while (event := await self._queue.get()) is not None:
            yield event

    def close(self) -> None:
        """Stop receiving events."""
        self._broker.unsubscribe(self)


class EventBroker:
    """Delivers events to the subscribers of the event's microgrid."""

    def __init__(self) -> None:
        """Create a broker without subscribers."""
        self._subscribers: dict[int, set[Subscription]] = {}
        self._closed = False
        # Set (and replaced) whenever the set of subscribers changes, so that
        # `wait_for_subscribers()` can await changes instead of polling.
        self._changed = asyncio.Event()

    def _notify_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def subscribe(self, microgrid_id: int) -> Subscription:
        """Start receiving the events of a microgrid.

        Events published after this call returns are delivered.

        Args:
            microgrid_id: The microgrid.

        Returns:
            The subscription; close it when done.
        """
        subscription = Subscription(self, microgrid_id)
        if self._closed:
            subscription.put(None)
        else:
            self._subscribers.setdefault(microgrid_id, set()).add(subscription)
            self._notify_change()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering events to a subscription.

        Args:
            subscription: The subscription; unknown ones are ignored.
        """
        subscribers = self._subscribers.get(subscription.microgrid_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.microgrid_id]
            self._notify_change()

    def subscriber_count(self, microgrid_id: int | None = None) -> int:
        """Count the current subscriptions.

        Args:
            microgrid_id: Count only this microgrid's; `None` counts all.

        Returns:
            The number of subscriptions.
        """
        if microgrid_id is not None:
            return len(self._subscribers.get(microgrid_id, ()))
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    async def wait_for_subscribers(self, microgrid_id: int, count: int = 1) -> None:
        """Wait until a microgrid has at least `count` subscriptions.

        Args:
            microgrid_id: The microgrid.
            count: How many subscriptions to wait for.

        Raises:
            RuntimeError: If the broker is or gets closed before that.
        """
        while self.subscriber_count(microgrid_id) < count:
            if self._closed:
                raise RuntimeError("the event broker is closed")
            await self._changed.wait()

    def publish(
        self, microgrid_id: int, event: StreamMicrogridDispatchesResponse
    ) -> None:
        """Deliver an event to every subscriber of its microgrid.

        Args:
            microgrid_id: The microgrid the event is about.
            event: The event; subscribers share it and must not modify it.
        """
        for subscription in self._subscribers.get(microgrid_id, ()):
            subscription.put(event)

    def close(self) -> None:
        """End every subscription, now and for later subscribers."""
        self._closed = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.put(None)
        self._subscribers.clear()
        self._notify_change()
