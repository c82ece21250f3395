# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A highlevel interface for the dispatch API.

A small overview of the most important classes in this module:

* [Dispatcher][frequenz.dispatch.Dispatcher]: The entry point for the API.
* [Dispatch][frequenz.dispatch.Dispatch]: A dispatch type with lots of useful extra
  functionality.
* [ActorDispatcher][frequenz.dispatch.ActorDispatcher]: A service to manage other
  actors based on incoming dispatches.
* [Created][frequenz.dispatch.Created], [Updated][frequenz.dispatch.Updated],
  [Deleted][frequenz.dispatch.Deleted]: Dispatch event types.
* [MergeByType][frequenz.dispatch.MergeByType],
  [MergeByTypeTarget][frequenz.dispatch.MergeByTypeTarget]: Merge strategies.
* [DispatcherStatus][frequenz.dispatch.DispatcherStatus]: The dispatcher's
  health (`Dispatcher.status`, `Dispatcher.new_status_receiver()`).
* [DispatchActorId][frequenz.dispatch.DispatchActorId]: The identity of the actor
  a dispatch maps to (also importable from `frequenz.dispatch._actor_dispatcher`).
"""

from typing import Any

from ._actor_dispatcher import ActorDispatcher, DispatchActorId, DispatchInfo
from ._deprecation import warn_deprecated
from ._dispatch import Dispatch
from ._dispatcher import Dispatcher
from ._event import Created, Deleted, DispatchEvent, Updated
from ._merge_strategies import MergeByType, MergeByTypeTarget, MergeStrategy
from ._status import DispatcherStatus, StateSource

__all__ = [
    "ActorDispatcher",
    "Created",
    "Deleted",
    "Dispatch",
    "DispatchActorId",
    "DispatchEvent",
    "DispatchInfo",
    "Dispatcher",
    "DispatcherStatus",
    "MergeByType",
    "MergeByTypeTarget",
    "MergeStrategy",
    "StateSource",
    "Updated",
]


def __getattr__(name: str) -> Any:
    """Give access to the deprecated names, with a warning.

    Args:
        name: The attribute asked for.

    Returns:
        The deprecated object.

    Raises:
        AttributeError: If `name` is not a deprecated name either.
    """
    if name == "RunningState":
        warn_deprecated(
            "frequenz.dispatch.RunningState",
            "use Dispatcher.new_running_state_event_receiver(type) and read "
            "dispatch.started instead",
        )
        # Imported here so that only using the old name loads the old module.
        from ._deprecated import RunningState

        return RunningState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
