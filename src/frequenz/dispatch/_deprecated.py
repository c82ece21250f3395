# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The older API, kept importable so existing code keeps running while it moves on."""

import enum


class RunningState(enum.Enum):
    """The running state of a dispatch for a type.

    Deprecated:
        Use a running-state receiver for the type
        (`Dispatcher.new_running_state_event_receiver`) and read
        `Dispatch.started`.
    """

    RUNNING = "RUNNING"
    """The dispatch is running."""

    STOPPED = "STOPPED"
    """The dispatch is stopped."""

    DIFFERENT_TYPE = "DIFFERENT_TYPE"
    """The dispatch is of another type."""
