# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Ties a cache file to the scheduler: what to load at start, what to write.

Nothing the cache does may affect the schedule: every failure is logged and the
scheduler goes on as without a cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.types import DispatchId

from .._clock import Clock, wall_clock
from .._dispatch import Dispatch
from ._store import CachedState, DispatchCache

_logger = logging.getLogger(__name__)


def check_cache_options(
    cache_file: object, require_service: object, cache_max_age: object
) -> Path | None:
    """Validate the cache arguments of the scheduler and the dispatcher.

    Args:
        cache_file: The cache file path, or None for no cache.
        require_service: Whether to wait for the service despite a cache.
        cache_max_age: The oldest cache to use, or None for any age.

    Returns:
        The cache file as a path, or None.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If `cache_max_age` is not positive.
    """
    if not isinstance(require_service, bool):
        raise TypeError(f"require_service must be a bool, got {require_service!r}")
    if cache_max_age is not None:
        if not isinstance(cache_max_age, timedelta):
            raise TypeError(
                f"cache_max_age must be a timedelta or None, got {cache_max_age!r}"
            )
        if cache_max_age <= timedelta(0):
            raise ValueError(f"cache_max_age must be positive, got {cache_max_age}")
    if cache_file is None:
        return None
    if not isinstance(cache_file, str | os.PathLike) or not str(cache_file):
        raise TypeError(
            f"cache_file must be a non-empty path (str or PathLike), got {cache_file!r}"
        )
    return Path(cache_file)


class CacheLink:
    """The scheduler's side of the cache."""

    def __init__(
        self,
        path: Path,
        microgrid_id: MicrogridId,
        *,
        max_age: timedelta | None,
        clock: Clock = wall_clock,
    ) -> None:
        """Prepare the link; the file is opened by `load()`.

        Args:
            path: The cache file.
            microgrid_id: The microgrid.
            max_age: Refuse a cache older than this.
            clock: Where "now" is read (the scheduler's clock).
        """
        self._clock = clock
        self._path = path
        self._microgrid_id = microgrid_id
        self._max_age = max_age
        self._cache: DispatchCache | None = None
        self._opened = False
        self.loaded: CachedState | None = None
        """What was loaded at start-up, if anything."""

    def load(self) -> CachedState | None:
        """Open the file and read what it holds (once).

        Returns:
            The cached state to start from, or None.
        """
        if self._opened:
            return None  # a restarted sync task: the schedule has it already
        self._opened = True
        try:
            self._cache = DispatchCache.open(
                self._path, self._microgrid_id, clock=self._clock
            )
            self.loaded = self._cache.load(self._max_age)
        except Exception as error:
            _logger.error(
                "Dispatch cache %s unusable, running without it: %s", self._path, error
            )
            self._close_quietly()
            return None
        if self.loaded is None:
            _logger.info("No usable dispatch cache in %s", self._path)
        else:
            _logger.info(
                "Dispatch cache %s: %d dispatches of microgrid %d, synced at %s"
                " (age %s)",
                self._path,
                len(self.loaded.dispatches),
                int(self._microgrid_id),
                self.loaded.synced_at.isoformat(),
                self.loaded.age,
            )
        return self.loaded

    def synced(self, held: Iterable[Dispatch]) -> None:
        """Write the state after a full sync.

        Args:
            held: Every dispatch the schedule holds now.
        """
        if self._cache is None:
            return
        try:
            self._cache.replace_all(held, self._clock())
        except Exception:
            _logger.exception("Cannot write the dispatch cache %s", self._path)

    def changed(self, dispatch_id: DispatchId, held: Dispatch | None) -> None:
        """Record the state of one dispatch after a stream event (batched).

        Args:
            dispatch_id: The dispatch the event was about.
            held: The version now held, or None if it is not held (deleted).
        """
        if self._cache is None:
            return
        try:
            if held is None:
                self._cache.record_delete(dispatch_id)
            else:
                self._cache.record_upsert(held)
        except Exception:
            _logger.exception("Cannot write the dispatch cache %s", self._path)

    def close(self) -> None:
        """Write what is pending and close the file."""
        try:
            if self._cache is not None:
                self._cache.close()
        except Exception:
            _logger.exception("Cannot close the dispatch cache %s", self._path)
        self._cache = None
        self._opened = False

    def _close_quietly(self) -> None:
        cache, self._cache = self._cache, None
        if cache is not None:
            with contextlib.suppress(Exception):
                cache.close()
