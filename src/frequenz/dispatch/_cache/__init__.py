# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""An offline-first local cache of a microgrid's dispatches.

`DispatchCache` is the store (one SQLite file per microgrid); `CacheLink` ties it
to the scheduler: load at start-up, write after every full sync and every change.
"""

from ._file import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    CacheUnavailable,
    library_version,
    move_aside,
)
from ._store import CachedState, DispatchCache

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "CacheUnavailable",
    "CachedState",
    "DispatchCache",
    "library_version",
    "move_aside",
]
