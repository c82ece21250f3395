# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Rate-limited logging of rejected calls.

A misconfigured client retries, and an attacker probes: either would fill the
log with one warning per call. Per client (its address without the port), the
first rejection of an interval is logged at once and the others are counted;
the count is logged with the next rejection after the interval, or when the
service stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_LOG_INTERVAL = 60.0
"""Seconds between two warnings about the same client."""

_MAX_CLIENTS = 1024
"""Clients tracked at once; beyond this, expired entries are flushed."""


@dataclass
class _Window:
    started: float
    suppressed: int = 0
    last_reason: str = ""


def client_of(peer: str) -> str:
    """Identify a client by its address, without the port.

    Args:
        peer: gRPC's `context.peer()`, e.g. `ipv4:127.0.0.1:50412`.

    Returns:
        The client, e.g. `ipv4:127.0.0.1`.
    """
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        address = address.rpartition(":")[0] or address
    return f"{kind}:{address}" if address else peer


class RejectionLog:
    """Logs rejections at most once per client per interval, with a count."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = DEFAULT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a log.

        Args:
            logger: Where warnings go.
            interval: Seconds between two warnings about one client.
            clock: Monotonic seconds.
        """
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def record(self, client: str, method: str, reason: str) -> None:
        """Note a rejected call, and log it unless one was logged recently.

        Args:
            client: Who called (see `client_of`).
            method: The RPC path.
            reason: Why the call was rejected (never a secret).
        """
        now = self._clock()
        window = self._windows.get(client)
        if window is not None and now - window.started < self._interval:
            window.suppressed += 1
            window.last_reason = reason
            return
        if window is not None:
            self._log_suppressed(client, window)
        elif len(self._windows) >= _MAX_CLIENTS:
            self._forget_expired(now)
        self._windows[client] = _Window(started=now)
        self._logger.warning(
            "Rejected call to %s from %s: %s (further rejections from this "
            "client are counted for %.0f s)",
            method,
            client,
            reason,
            self._interval,
        )

    def flush(self) -> None:
        """Log the counts not logged yet, e.g. when the service stops."""
        for client, window in self._windows.items():
            self._log_suppressed(client, window)
        self._windows.clear()

    def _forget_expired(self, now: float) -> None:
        for client, window in list(self._windows.items()):
            if now - window.started >= self._interval:
                self._log_suppressed(client, window)
                del self._windows[client]

    def _log_suppressed(self, client: str, window: _Window) -> None:
        if window.suppressed:
            self._logger.warning(
                "Rejected %d more calls from %s (last reason: %s)",
                window.suppressed,
                client,
                window.last_reason,
            )
            window.suppressed = 0
