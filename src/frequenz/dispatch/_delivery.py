# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Receivers that never drop a message, and the registry that fans out to them.

frequenz-channels' broadcast receivers have a bounded buffer that drops the oldest
message when a consumer falls behind. A dropped start or stop leaves an actor
running forever or never started, so every receiver this library hands out keeps
all pending messages instead. Memory stays bounded by coalescing: a pending message
that a newer one makes redundant (for the same key, as decided by `supersedes`) is
replaced by the newer one, which moves to the end of the queue so that the order in
which the latest messages arrive is kept. A receiver may instead `merge` a new
message with the pending one of its key into one message (or into none); the
lifecycle receivers do (`_lifecycle.merge_lifecycle`), so their memory is bounded
by the number of dispatches, not of events.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Final, Generic, TypeVar

from frequenz.channels import Receiver, ReceiverStoppedError
from typing_extensions import override

MessageT = TypeVar("MessageT")
KeyT = TypeVar("KeyT", bound=Hashable)

KEEP_BOTH: Final = object()
"""What a `merge` function returns when the two messages must both be delivered."""


class UnboundedReceiver(Receiver[MessageT]):
    """A receiver whose queue never drops a message.

    The library feeds it with `enqueue`, which never blocks; consumers only
    receive.
    """

    def __init__(
        self,
        *,
        name: str,
        coalesce_key: Callable[[MessageT], Hashable] | None = None,
        supersedes: Callable[[MessageT, MessageT], bool] | None = None,
        merge: Callable[[MessageT, MessageT], Any] | None = None,
    ) -> None:
        """Initialize this receiver.

        Args:
            name: A name for logs and `repr`.
            coalesce_key: Groups messages that may replace each other (for example
                the dispatch id). None disables coalescing.
            supersedes: Called as `supersedes(newer, pending)` for the last pending
                message with the same key; True replaces the pending message.
            merge: Called as `merge(newer, pending)` for the last pending message
                with the same key (instead of `supersedes`): returns the one
                message that replaces both (queued last), None to drop both, or
                `KEEP_BOTH`.
        """
        self._name = name
        self._coalesce_key = coalesce_key
        self._supersedes = supersedes
        self._merge_pending = merge
        self._pending: OrderedDict[int, MessageT] = OrderedDict()
        self._last_pending_by_key: dict[Hashable, int] = {}
        self._sequence = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        """The number of messages waiting to be consumed."""
        return len(self._pending)

    def enqueue(self, message: MessageT) -> None:
        """Queue a message for the consumer (the sending side of this receiver).

        Never blocks and never drops a message: a pending message this one
        supersedes (see `supersedes`) is replaced, and the new one goes last.
        Does nothing once the receiver is closed.

        Args:
            message: The message.
        """
        if self._closed:
            return
        key: Hashable = None
        if self._coalesce_key is not None:
            key = self._coalesce_key(message)
            previous = self._last_pending_by_key.get(key)
            if previous is not None and self._merge_pending is not None:
                merged = self._merge_pending(message, self._pending[previous])
                if merged is not KEEP_BOTH:
                    del self._pending[previous]
                    if merged is None:
                        del self._last_pending_by_key[key]
                        return
                    message = merged
            elif previous is not None and (
                self._supersedes is None
                or self._supersedes(message, self._pending[previous])
            ):
                del self._pending[previous]
        self._sequence += 1
        self._pending[self._sequence] = message
        if self._coalesce_key is not None:
            self._last_pending_by_key[key] = self._sequence
        self._wakeup.set()

    @override
    async def ready(self) -> bool:
        """Wait until a message is available.

        Returns:
            True when a message can be consumed, False when the receiver is closed
                and drained.
        """
        while not self._pending:
            if self._closed:
                return False
            self._wakeup.clear()
            await self._wakeup.wait()
        return True

    @override
    def consume(self) -> MessageT:
        """Return the next message once `ready` returned True.

        Returns:
            The oldest pending message.

        Raises:
            ReceiverStoppedError: If the receiver is closed and drained.
        """
        if not self._pending:
            if self._closed:
                raise ReceiverStoppedError(self)
            raise RuntimeError("consume() must be preceded by a call to ready()")
        sequence, message = self._pending.popitem(last=False)
        if self._coalesce_key is not None:
            key = self._coalesce_key(message)
            if self._last_pending_by_key.get(key) == sequence:
                del self._last_pending_by_key[key]
        return message

    @override
    def close(self) -> None:
        """Close the receiver.

        Pending messages can still be consumed; after that, receiving raises
        `ReceiverStoppedError`.
        """
        self._closed = True
        self._wakeup.set()

    @property
    def is_closed(self) -> bool:
        """Whether the receiver is closed."""
        return self._closed

    def __str__(self) -> str:
        return f"{type(self).__name__}:{self._name}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self._name!r}, pending={len(self._pending)},"
            f" closed={self._closed})"
        )


ReceiverT = TypeVar("ReceiverT", bound=UnboundedReceiver)  # type: ignore[type-arg]


class Subscribers(Generic[KeyT, ReceiverT]):
    """The receivers subscribed per key (for example per dispatch type).

    Receivers are held weakly, like frequenz-channels does: a receiver the consumer
    dropped is forgotten instead of buffering forever.
    """

    def __init__(self) -> None:
        """Initialize an empty registry."""
        self._by_key: dict[KeyT, weakref.WeakSet[ReceiverT]] = {}

    def add(self, key: KeyT, receiver: ReceiverT) -> None:
        """Subscribe a receiver to a key.

        Args:
            key: The key.
            receiver: The receiver.
        """
        self._by_key.setdefault(key, weakref.WeakSet()).add(receiver)

    def of(self, key: KeyT) -> Iterator[ReceiverT]:
        """Iterate over the open receivers subscribed to a key.

        Args:
            key: The key.

        Yields:
            Each open receiver.
        """
        receivers = self._by_key.get(key)
        if receivers is None:
            return
        if not receivers:
            del self._by_key[key]
            return
        # Copy: a consumer may drop (and so remove) a receiver while we iterate.
        for receiver in list(receivers):
            if not receiver.is_closed:
                yield receiver

    def close_all(self) -> None:
        """Close every receiver and forget them."""
        for receivers in self._by_key.values():
            for receiver in list(receivers):
                receiver.close()
        self._by_key.clear()
