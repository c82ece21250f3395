# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Merge strategies: how overlapping dispatches map to actors."""

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping

from typing_extensions import override

from ._dispatch import Dispatch

_logger = logging.getLogger(__name__)


class MergeStrategy(ABC):
    """Base class for strategies to merge running intervals.

    A strategy maps each dispatch to an actor *identity*; running-state events of
    dispatches with the same identity drive the same actor. `filter` then decides
    which events reach the consumer.
    """

    @abstractmethod
    def identity(self, dispatch: Dispatch) -> int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The identity of the actor the dispatch maps to.
        """

    @abstractmethod
    def filter(self, dispatches: Mapping[int, Dispatch], dispatch: Dispatch) -> bool:
        """Filter dispatches based on the strategy.

        Args:
            dispatches: The context of the decision: the running dispatches that
                share the identity of `dispatch` (so that a decision never has to
                scan every dispatch of the microgrid).
            dispatch: The dispatch to filter.

        Returns:
            True if the dispatch should be included, False otherwise.
        """


class MergeByType(MergeStrategy):
    """Merge running intervals based on the dispatch type.

    All dispatches of a type map to one actor: it starts with the first dispatch
    that starts and stops when the last running one stops.
    """

    @override
    def identity(self, dispatch: Dispatch) -> int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The same identity for every dispatch of the same type.
        """
        return hash(dispatch.type)

    @override
    def filter(self, dispatches: Mapping[int, Dispatch], dispatch: Dispatch) -> bool:
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

    Dispatches of a type map to one actor per target.
    """

    @override
    def identity(self, dispatch: Dispatch) -> int:
        """Identity function for the merge criteria.

        Args:
            dispatch: The dispatch to identify.

        Returns:
            The same identity for dispatches with equal type and target.
        """
        # Targets are frozensets in frequenz-client-dispatch 1.x: hashable, and
        # equal sets hash equally whatever order they were built in.
        return hash((dispatch.type, dispatch.target))
