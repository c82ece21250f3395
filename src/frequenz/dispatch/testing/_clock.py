# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The test kit's clock: the fake event loop's time and the wall clock, together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import async_solipsism
import time_machine

__all__ = ["MAX_STEP", "EventLoop", "FakeClock", "is_fake_time"]

MAX_STEP = 12 * 3600.0
"""The longest single sleep of `advance` (s): async-solipsism's loop treats a
sleep of a day or more with nothing else to do as sleeping forever."""


def is_fake_time(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Tell whether a loop runs on fake time (async-solipsism's loop).

    Args:
        loop: The loop to check; None for the running one.

    Returns:
        True on async-solipsism's loop (and so on
        [`EventLoop`][frequenz.dispatch.testing.EventLoop]), False otherwise.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    return isinstance(loop, async_solipsism.EventLoop)


_END_ROUNDS = 20
"""How often `advance` yields at its end, for the tasks woken at that instant."""


class EventLoop(async_solipsism.EventLoop):  # type: ignore[misc]  # untyped package
    """async-solipsism's fake-time event loop, telling listeners when timers fire.

    Only the public `call_at` is overridden (`call_later`, `asyncio.sleep` and
    `asyncio.timeout` all go through it): before a timer's callback runs, every
    listener is called, so a `FakeClock` moves the wall clock to the instant the
    timer fired at.
    """

    def __init__(self) -> None:
        """Initialize the loop."""
        super().__init__()
        self._timer_listeners: list[Callable[[], None]] = []

    def add_timer_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` before every timer callback from now on.

        Args:
            listener: The function to call (without arguments).
        """
        self._timer_listeners.append(listener)

    def remove_timer_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling a listener added with `add_timer_listener`.

        Args:
            listener: The function added before.
        """
        if listener in self._timer_listeners:
            self._timer_listeners.remove(listener)

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Any = None,
    ) -> asyncio.TimerHandle:
        """Schedule `callback` at loop time `when`, notifying the listeners first.

        Args:
            when: The loop time to run at.
            callback: The function to call.
            *args: Its arguments.
            context: The `contextvars.Context` to run it in.

        Returns:
            The timer handle.
        """
        handle: asyncio.TimerHandle = super().call_at(
            when, self._fire, callback, args, context=context
        )
        return handle

    def _fire(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        for listener in list(self._timer_listeners):
            listener()
        callback(*args)


class FakeClock:
    """A test's clock: the event loop's fake time and the wall clock, together.

    Use it as a context manager inside a coroutine running on async-solipsism's
    loop (best [`EventLoop`][frequenz.dispatch.testing.EventLoop]): it freezes the
    wall clock at `start` and from then on keeps it at `now()`.
    """

    def __init__(self, start: datetime) -> None:
        """Initialize the clock.

        Args:
            start: The instant the test starts at (timezone-aware).

        Raises:
            ValueError: If `start` is naive.
        """
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware, got {start!r}")
        self._start = start
        self._jumped = timedelta(0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_start = 0.0
        self._travel: Any = None
        self._traveller: Any = None

    def __enter__(self) -> Self:
        """Freeze the wall clock at the start and follow the running loop.

        Returns:
            This clock.

        Raises:
            RuntimeError: If no event loop is running, or the clock is entered twice.
        """
        if self._loop is not None:
            raise RuntimeError("FakeClock is already in use")
        loop = asyncio.get_running_loop()
        if not is_fake_time(loop):
            # On a real loop `advance(days=365)` would really sleep for a year.
            raise RuntimeError(
                f"FakeClock needs async-solipsism's event loop, not {loop!r}: run "
                "the test on frequenz.dispatch.testing.EventLoop (with pytest, "
                "`-p frequenz.dispatch.testing` does it for tests that use its "
                "fixtures)"
            )
        self._loop = loop
        self._loop_start = self._loop.time()
        self._travel = time_machine.travel(self._start, tick=False)
        self._traveller = self._travel.start()
        if isinstance(self._loop, EventLoop):
            self._loop.add_timer_listener(self._sync)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Give the wall clock back to the system.

        Args:
            exc_type: The exception type, if any.
            exc: The exception, if any.
            traceback: Its traceback, if any.
        """
        if isinstance(self._loop, EventLoop):
            self._loop.remove_timer_listener(self._sync)
        if self._travel is not None:
            self._travel.stop()
        self._loop = self._travel = self._traveller = None

    def now(self) -> datetime:
        """Return the current (fake) time; usable as the injectable clock.

        Returns:
            The start, plus the loop time passed since, plus every `jump`.

        Raises:
            RuntimeError: If the clock is not entered.
        """
        if self._loop is None:
            raise RuntimeError("FakeClock.now() outside `with FakeClock(...)`")
        elapsed = timedelta(seconds=self._loop.time() - self._loop_start)
        current = self._start + elapsed + self._jumped
        self._traveller.move_to(current)
        return current

    async def advance(self, delta: timedelta) -> None:
        """Let `delta` pass: timers due meanwhile fire in order, at their time.

        Timers due exactly at the end fire as well, and the tasks they wake run
        before this returns.

        Args:
            delta: How long (not negative).

        Raises:
            ValueError: If `delta` is negative.
        """
        if delta < timedelta(0):
            raise ValueError(f"cannot advance by a negative time, got {delta}")
        remaining = delta.total_seconds()
        while remaining > 0:
            step = min(remaining, MAX_STEP)
            await asyncio.sleep(step)
            remaining -= step
            self._sync()
        # Timers due at the very end fire too (and what they wake runs): ours
        # may have come first among the timers of that instant.
        for _ in range(_END_ROUNDS):
            await asyncio.sleep(0)

    async def advance_to(self, when: datetime) -> None:
        """Let time pass until `when` (nothing happens if it is past).

        Args:
            when: The instant to reach (timezone-aware).
        """
        delta = when - self.now()
        if delta > timedelta(0):
            await self.advance(delta)

    def jump(self, delta: timedelta) -> None:
        """Move the wall clock alone (as NTP or a suspended machine would).

        The event loop's time does not move; `now()` includes the jump.

        Args:
            delta: How far, forward or (negative) backward.
        """
        self._jumped += delta
        self._sync()

    def _sync(self) -> None:
        self.now()
