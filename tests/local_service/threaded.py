# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A service on its own event loop thread, for synchronous (Hypothesis) tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from frequenz.dispatch.local_service import LocalDispatchService

TIMEOUT = 30.0


@contextlib.contextmanager
def service_in_thread(**options: Any) -> Iterator[LocalDispatchService]:
    """Run a `LocalDispatchService` on a loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    service = LocalDispatchService(**options)
    try:
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(TIMEOUT)
        try:
            yield service
        finally:
            asyncio.run_coroutine_threadsafe(service.stop(), loop).result(TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
