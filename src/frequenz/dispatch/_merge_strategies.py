# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Merge strategies: how overlapping dispatches map to actors."""

import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import Any

from typing_extensions import override

from ._actor_dispatcher import DispatchActorId
from ._dispatch import Dispatch

_logger = logging.getLogger(__name__)


def _actor_id(key: Hashable) -> DispatchActorId:
    # Actor ids cannot be negative; shifting by maxsize + 1 maps every hash to
    # [0, 2**64) one to one, so no two keys collide more than their hashes do.
    return DispatchActorId(hash(key) + sys.maxsize + 1)


class MergeStrategy(ABC):
    """Base class for strategies to merge running intervals.

    A strategy maps each dispatch to an actor *identity*; running-state events of
    dispatches with the same identity drive the same actor. `filter` then decides
    which events reach the consumer.

    A subclass's `identity` may return a `DispatchActorId` (as the built-in
    strategies do) or a plain int (as the seeds' examples do): any value that is
    equal for the dispatches that should share an actor works.

    `filter` gets the dispatches keyed by their `DispatchId`. The key is typed
    `Any` so that overrides declared with `Mapping[DispatchId, Dispatch]`
    (frequenz-dispatch 1.0.x) and with `Mapping[int, Dispatch]` (the seeds'
    examples) both type-check.
    """

    @abstractmethod
    def identity(self, dispatch: Dispatch) -> DispatchActorId | int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The identity of the actor the dispatch maps to.
        """

    @abstractmethod
    def filter(self, dispatches: Mapping[Any, Dispatch], dispatch: Dispatch) -> bool:
        """Filter dispatches based on the strategy.

        Args:
            dispatches: The context of the decision, keyed by `DispatchId`: the
                running dispatches that share the identity of `dispatch` (so that
                a decision never has to scan every dispatch of the microgrid).
            dispatch: The dispatch to filter.

        Returns:
            True if the dispatch should be included, False otherwise.
        """


class MergeByType(MergeStrategy):
    """Merge running intervals based on the dispatch type.

    All dispatches of a type and dry-run flag map to one actor: it starts with the
    first such dispatch that starts and stops when the last running one stops. A
    live and a dry-run dispatch never share an actor, so a dry run can never
    swallow (or be configured by) a live dispatch that overlaps it.
    """

    @override
    def identity(self, dispatch: Dispatch) -> DispatchActorId | int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The same identity for every dispatch with the same type and dry-run
                flag (a `DispatchActorId`).
        """
        return _actor_id((dispatch.type, dispatch.dry_run))

    @override
    def filter(self, dispatches: Mapping[Any, Dispatch], dispatch: Dispatch) -> bool:
        """Filter dispatches based on the merge strategy.

        Keeps start events. Keeps stop events only if no other dispatches matching
        the strategy's criteria are running.

        Args:
            dispatches: The running dispatches sharing `dispatch`'s identity.
            dispatch: The dispatch to filter.

        Returns:
            True if the event should reach the consumer.
        """
        if dispatch.started:
            return True
        identity = self.identity(dispatch)
        others_running = any(
            other.started
            for other in dispatches.values()
            if other.id != dispatch.id and self.identity(other) == identity
        )
        if others_running:
            _logger.debug(
                "Holding back the stop of dispatch %s: others with its identity run",
                dispatch.id,
            )
        return not others_running


class MergeByTypeTarget(MergeByType):
    """Merge running intervals based on the dispatch type and target.

    Dispatches of a type map to one actor per dry-run flag and target.
    """

    @override
    def identity(self, dispatch: Dispatch) -> DispatchActorId | int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The same identity for dispatches with equal type, dry-run flag and
                target (a `DispatchActorId`).
        """
        # Targets are frozensets in frequenz-client-dispatch 1.x: hashable, and
        # equal sets hash equally whatever order they were built in.
        return _actor_id((dispatch.type, dispatch.dry_run, dispatch.target))
