# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Stopping console commands cleanly on Ctrl-C or SIGTERM."""

import asyncio
import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """Return an event that SIGINT (Ctrl-C) or SIGTERM sets while the block runs.

    Handling the signals in the event loop lets the command shut down in order
    (actors, dispatcher, service) instead of being interrupted anywhere. Where
    the platform has no signal handlers (Windows), Ctrl-C raises
    `KeyboardInterrupt` as usual.

    Yields:
        The event to wait on.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    try:
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
    except NotImplementedError:
        signals = ()
    try:
        yield stop
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
