# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The injectable clock: where the engine reads "now".

The scheduler never calls `datetime.now()` itself; it calls the `Clock` it was
given, by default `wall_clock`. Tests give it the clock of
`frequenz.dispatch.testing.FakeClock`, which moves with the fake event loop, so
production code has no branch for simulated time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]
"""A callable returning the current time, timezone-aware (UTC)."""


def wall_clock() -> datetime:
    """Return the current UTC time of the system's wall clock.

    Returns:
        The current time, timezone-aware.
    """
    return datetime.now(tz=timezone.utc)
