# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Running-state receivers and the merge bookkeeping behind them."""

from __future__ import annotations

import logging
from collections.abc import Generator, Hashable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

from frequenz.client.dispatch.types import DispatchId

from ._delivery import UnboundedReceiver
from ._dispatch import Dispatch
from ._merge_strategies import MergeStrategy

_logger = logging.getLogger(__name__)


def _same_running_state(newer: Dispatch, pending: Dispatch) -> bool:
    # A newer message with the same running state only reconfigures: the pending
    # one is redundant. A start followed by a stop (or the reverse) is never merged.
    return newer.started == pending.started


class MergeTracker:
    """Applies a merge strategy to the running-state events of one receiver.

    Keeps, per actor identity, the dispatches that run under it, so that every
    decision looks only at that identity's running dispatches. It also makes sure
    the consumer ends with the configuration of a dispatch that still runs:

    * when the dispatch whose configuration was delivered last stops while others
      of its identity run, the most recently started of those is delivered again;
    * when a running dispatch changes identity (for example its target changes
      under `MergeByTypeTarget`), it first leaves its old identity exactly as if it
      had stopped, so the old identity's actor is not orphaned.

    The strategy is user code: when its `identity()` or `filter()` raises, the
    error is logged once per dispatch (naming the strategy and the dispatch) and
    only this receiver is affected. A dispatch whose start cannot be merged is not
    started for this receiver (and leaves the identity it ran under, as if it had
    stopped); a stop whose filter raises is delivered, since a stop must never be
    lost, followed by the start of a dispatch of the identity that still runs.
    """

    def __init__(self, strategy: MergeStrategy) -> None:
        """Initialize the tracker.

        Args:
            strategy: The merge strategy to apply.
        """
        self._strategy = strategy
        self._running: dict[Hashable, dict[DispatchId, Dispatch]] = {}
        self._identity_of: dict[DispatchId, Hashable] = {}
        self._delivered: dict[Hashable, DispatchId] = {}
        self._reported: set[DispatchId] = set()

    def process(self, message: Dispatch) -> Iterator[Dispatch]:
        """Turn a running-state event into the events the consumer should get.

        Args:
            message: A running-state event, as sent by the scheduler.

        Yields:
            The events to deliver, in order.
        """
        dispatch_id = message.id
        old_identity = self._identity_of.get(dispatch_id)
        if not message.started:
            if old_identity is not None:
                yield from self._leave(old_identity, message)
            elif self._filter(MappingProxyType({}), message) is not False:
                # A stop whose filter raised goes through: never lose a stop.
                yield message
            return

        identity = self._identity(message)
        if old_identity is not None and old_identity != identity:
            previous = self._running[old_identity][dispatch_id]
            yield from self._leave(old_identity, previous.with_running_state(None))
        if identity is _FAILED:
            return
        group = self._running.setdefault(identity, {})
        # Re-inserting keeps each group ordered by when its members last started.
        group.pop(dispatch_id, None)
        group[dispatch_id] = message
        self._identity_of[dispatch_id] = identity
        passes = self._filter(_view(group), message)
        if passes is None:
            # Not merged, so not run here: it leaves the group it just joined.
            yield from self._leave(identity, message.with_running_state(None))
        elif passes:
            self._delivered[identity] = dispatch_id
            yield message

    def _leave(self, identity: Hashable, stop: Dispatch) -> Iterator[Dispatch]:
        group = self._running[identity]
        del group[stop.id]
        del self._identity_of[stop.id]
        delivered = self._delivered.get(identity)
        passes = self._filter(_view(group), stop)
        if passes is None:
            # Fail safe: the stop goes through, and whatever still runs under the
            # identity is started again, so the consumer ends in the right state.
            self._delivered.pop(identity, None)
            yield stop
            if group:
                successor = next(reversed(group.values()))
                self._delivered[identity] = successor.id
                yield successor
        elif passes:
            if delivered == stop.id or not group:
                self._delivered.pop(identity, None)
            yield stop
        elif delivered == stop.id and group:
            successor = next(reversed(group.values()))
            self._delivered[identity] = successor.id
            yield successor
        if not group:
            del self._running[identity]

    def _identity(self, dispatch: Dispatch) -> Hashable:
        try:
            return self._strategy.identity(dispatch)
        except Exception:
            self._report("identity", dispatch)
            return _FAILED

    def _filter(self, group: Mapping[Any, Dispatch], dispatch: Dispatch) -> bool | None:
        # None when the strategy raised.
        try:
            return bool(self._strategy.filter(group, dispatch))
        except Exception:
            self._report("filter", dispatch)
            return None

    def _report(self, method: str, dispatch: Dispatch) -> None:
        # Once per dispatch: a strategy that always fails must not flood the log.
        if dispatch.id in self._reported:
            _logger.debug(
                "%s.%s() failed again for dispatch %s",
                type(self._strategy).__name__,
                method,
                int(dispatch.id),
            )
            return
        self._reported.add(dispatch.id)
        _logger.exception(
            "Merge strategy %s.%s() failed for dispatch %s (type %r); %s for this "
            "receiver only (logged once per dispatch)",
            type(self._strategy).__name__,
            method,
            int(dispatch.id),
            dispatch.type,
            "its stop is delivered" if not dispatch.started else "it is not run",
        )


_FAILED: Final = object()
"""The identity of a dispatch whose strategy's `identity()` raised."""


def _view(group: dict[DispatchId, Dispatch]) -> Mapping[int, Dispatch]:
    # Dispatch ids are typed DispatchId; strategies are documented with int keys.
    view: Mapping[Any, Dispatch] = MappingProxyType(group)
    return view


class RunningStateReceiver(UnboundedReceiver[Dispatch]):
    """A receiver of dispatches whose running state changed.

    It never drops a start or a stop. Consecutive pending messages of one dispatch
    with the same running state are merged into the newest, so a slow consumer
    always ends with the latest state of every dispatch.

    It can be used directly, or awaited (`await
    dispatcher.new_running_state_event_receiver(...)`), which returns itself.
    """

    def __init__(self, *, name: str, merge_strategy: MergeStrategy | None) -> None:
        """Initialize the receiver.

        Args:
            name: A name for logs.
            merge_strategy: The merge strategy to apply, None for no merging.
        """
        super().__init__(
            name=name,
            coalesce_key=lambda dispatch: dispatch.id,
            supersedes=_same_running_state,
        )
        self._merge = None if merge_strategy is None else MergeTracker(merge_strategy)

    def deliver(self, message: Dispatch) -> None:
        """Deliver a running-state event, applying the merge strategy.

        The scheduler's way to feed this receiver (use it rather than `enqueue`,
        which would bypass the merge strategy).

        Args:
            message: The event as sent by the scheduler.
        """
        if self._merge is None:
            self.enqueue(message)
            return
        for filtered in self._merge.process(message):
            self.enqueue(filtered)

    def __await__(self) -> Generator[Any, None, RunningStateReceiver]:
        """Return this receiver when awaited.

        Returns:
            This receiver.
        """
        return self
        yield  # pragma: no cover  # makes this function a generator
