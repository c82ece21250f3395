# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Receiving in tests: bounded waits that fail with a clear message, never hang."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import TracebackType
from typing import Generic, Self, TypeVar

from frequenz.channels import Receiver

from ._clock import MAX_STEP, is_fake_time

__all__ = ["Recorder", "next_event", "no_event", "settle"]

T = TypeVar("T")

_SETTLE_ROUNDS = 20
"""How often `settle` yields: enough for a message to cross a few tasks."""


class _TimedOut(Exception):
    """Nothing came before the deadline (internal)."""


async def settle(rounds: int = _SETTLE_ROUNDS) -> None:
    """Let every task that is ready run, without letting any time pass.

    Args:
        rounds: How often to yield to the other tasks.
    """
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _sleep(seconds: float) -> None:
    # On async-solipsism's loop, one sleep of a day or more with nothing else to
    # do counts as sleeping forever; shorter steps let a long window pass.
    if not is_fake_time():
        await asyncio.sleep(seconds)
        return
    remaining = seconds
    while remaining > 0:
        step = min(remaining, MAX_STEP)
        await asyncio.sleep(step)
        remaining -= step


async def _ready_within(receiver: Receiver[T], within: timedelta) -> bool:
    """Wait for `receiver` to be ready; raise `_TimedOut` after `within`.

    Returns:
        What `receiver.ready()` returned (False: the receiver was closed).
    """
    if within < timedelta(0):
        raise ValueError(f"within must not be negative, got {within}")
    # `ready()` may be cancelled without losing a message (the channels'
    # contract), unlike `receive()`: the message stays for the next read.
    ready = asyncio.ensure_future(receiver.ready())
    deadline = asyncio.ensure_future(_sleep(within.total_seconds()))
    try:
        await asyncio.wait({ready, deadline}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        deadline.cancel()
        if not ready.done():
            ready.cancel()
    if not ready.done() or ready.cancelled():
        raise _TimedOut
    return ready.result()


def _clock_kind() -> str:
    return "fake time" if is_fake_time() else "real time"


async def next_event(receiver: Receiver[T], *, within: timedelta) -> T:
    """Return the next message of `receiver`, failing if none comes in time.

    On the fake event loop, waiting lets fake time pass (timers due meanwhile
    fire, a `FakeClock` follows), so a window of a year takes milliseconds; on a
    real loop it is real time. Long windows are fine: the wait never counts as
    "sleeping forever" on async-solipsism's loop.

    Example:
        ```python
        import asyncio
        from datetime import timedelta

        from frequenz.channels import BroadcastChannel
        from frequenz.dispatch.testing import EventLoop, next_event

        async def main() -> None:
            sender, receiver = BroadcastChannel[str](name="example")
            try:
                await next_event(receiver, within=timedelta(days=30))
            except AssertionError as error:
                print(error)  # nothing received from ... within 30 days ...

            async def send_later() -> None:
                await asyncio.sleep(3600)
                await sender.send("hello")

            sending = asyncio.create_task(send_later())
            assert await next_event(receiver, within=timedelta(hours=2)) == "hello"
            await sending

        with asyncio.Runner(loop_factory=EventLoop) as runner:
            runner.run(main())
        ```

    Args:
        receiver: The receiver to read.
        within: How long to wait at most (not negative).

    Returns:
        The message.

    Raises:
        AssertionError: If nothing came within `within`, or the receiver was
            closed meanwhile; the message names the receiver and the window.
        ValueError: If `within` is negative.
    """
    try:
        ready = await _ready_within(receiver, within)
    except _TimedOut:
        raise AssertionError(
            f"nothing received from {receiver} within {within} ({_clock_kind()})"
        ) from None
    if not ready:
        raise AssertionError(
            f"{receiver} was closed while waiting for its next message "
            f"(within {within}, {_clock_kind()})"
        )
    return receiver.consume()


async def no_event(receiver: Receiver[T], *, within: timedelta) -> None:
    """Check that `receiver` gets nothing for a while (letting the time pass).

    Args:
        receiver: The receiver to watch.
        within: How long it must stay silent (not negative).

    Raises:
        AssertionError: If a message came meanwhile (it is named, and consumed).
        ValueError: If `within` is negative.
    """
    try:
        ready = await _ready_within(receiver, within)
    except _TimedOut:
        return
    if ready:
        message = receiver.consume()
        raise AssertionError(
            f"{receiver} received {message!r} within {within} ({_clock_kind()}); "
            "expected nothing"
        )


class Recorder(Generic[T]):
    """Reads a receiver in the background, keeping every message in order.

    It reads as an attentive consumer would: a message sent at one instant is
    read before time moves on, so it is not merged with a later one. Start it
    before letting time pass; use it as an async context manager (or call
    `aclose()`) to stop reading.

    Example:
        ```python
        import asyncio
        from datetime import timedelta

        from frequenz.channels import BroadcastChannel
        from frequenz.dispatch.testing import EventLoop, Recorder, settle

        async def main() -> None:
            sender, receiver = BroadcastChannel[int](name="example")
            async with Recorder(receiver) as recorder:
                for number in range(3):
                    await sender.send(number)
                    await asyncio.sleep(60)
                await settle()
            assert recorder.messages == [0, 1, 2]

        with asyncio.Runner(loop_factory=EventLoop) as runner:
            runner.run(main())
        ```
    """

    def __init__(self, receiver: Receiver[T]) -> None:
        """Start reading `receiver` (needs a running event loop).

        Args:
            receiver: The receiver to read.
        """
        self.messages: list[T] = []
        """Every message read and not yet taken, oldest first."""
        self._receiver = receiver
        self._task = asyncio.create_task(self._read(), name=f"recorder:{receiver}")

    async def _read(self) -> None:
        async for message in self._receiver:
            self.messages.append(message)

    def take(self) -> list[T]:
        """Return the messages read so far, and forget them.

        Returns:
            The messages, oldest first.
        """
        taken, self.messages = self.messages, []
        return taken

    async def aclose(self) -> None:
        """Stop reading (the messages read so far stay)."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise  # we ourselves are being cancelled

    async def __aenter__(self) -> Self:
        """Return this recorder (it already reads).

        Returns:
            This recorder.
        """
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop reading.

        Args:
            exc_type: The exception type, if any.
            exc: The exception, if any.
            traceback: Its traceback, if any.
        """
        await self.aclose()
