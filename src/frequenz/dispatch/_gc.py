# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Pausing Python's cyclic garbage collector around bulk work."""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector from running inside the block.

    Bulk work (a full sync, a burst of simultaneous starts) allocates a few
    objects per dispatch, and any allocation can trigger a full collection that
    scans every long-lived object of the process: with 100,000 dispatches held,
    or a large application around the library, that is tens of milliseconds in
    the middle of delivering events. Nothing allocated here is cyclic garbage, so
    collecting can wait until the block ends. The previous state is restored.

    Yields:
        Nothing; the collector is paused while the block runs.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
