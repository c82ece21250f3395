# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The cache link's writes: on one worker thread, in order, batched, flushed.

The tests that hold a job on its thread run on a real event loop (`asyncio.run`
inside a plain test), since the fake loop runs a worker job at once and waits
for it. A job is held by a `threading.Event` the test sets, never by a sleep, so
what is recorded while it runs is known exactly. The tests of when writes happen
use the fake loop for that very reason: each write happens at a known step.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch._cache import DispatchCache
from frequenz.dispatch._cache._link import CacheLink

from .cache_helpers import BASE, count_commits, generation, wire_dispatch

NOW = BASE + timedelta(minutes=5)


def clock() -> datetime:
    return NOW


class Gate:
    """Holds every full-sync write on the worker thread until opened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.threads: list[str] = []
        replace_all = DispatchCache.replace_all

        def held(cache: DispatchCache, *args: Any, **kwargs: Any) -> bool:
            self.threads.append(threading.current_thread().name)
            self.entered.set()
            assert self.opened.wait(timeout=30), "the test never opened the gate"
            return replace_all(cache, *args, **kwargs)

        monkeypatch.setattr(DispatchCache, "replace_all", held)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Full-sync writes wait for `gate.opened`."""
    return Gate(monkeypatch)


def new_link(path: Path, **options: Any) -> CacheLink:
    return CacheLink(path, MicrogridId(1), max_age=None, clock=clock, **options)


def load(path: Path) -> list[Any]:
    cache = DispatchCache.open(path, 1, clock=clock)
    state = cache.load()
    cache.close()
    assert state is not None
    return state.dispatches


async def wait_on_loop(event: threading.Event) -> None:
    # Waited for on another thread: the loop goes on meanwhile.
    assert await asyncio.to_thread(event.wait, 30)


def test_a_full_sync_is_written_on_the_worker_thread_and_changes_follow_in_one_batch(
    tmp_path: Path, gate: Gate, commits: list[str]
) -> None:
    path = tmp_path / "cache.sqlite3"

    async def main() -> None:
        link = new_link(path)
        assert await link.load() is None  # a new file
        before = count_commits(commits)
        link.synced(generation(3000, 1))
        # Written on the loop, this would wait for the gate forever.
        await wait_on_loop(gate.entered)
        # The write is held on its thread; the loop goes on and records more.
        for dispatch in generation(3000, 2):
            link.changed(dispatch.id, dispatch)
        for dispatch_id in range(1, 1001):
            link.changed(DispatchId(dispatch_id), None)
        assert count_commits(commits) == before
        gate.opened.set()
        await link.close()  # waits for the write, then writes the changes
        # One transaction for the sync, one for 4,000 changes of 3,000 ids.
        assert count_commits(commits) - before == 2

    asyncio.run(main())
    assert gate.threads == ["dispatch-cache-1_0"]
    assert threading.main_thread().name not in gate.threads
    assert load(path) == generation(2000, 2, first_id=1001)


def test_a_full_sync_supersedes_the_changes_recorded_before_it(
    tmp_path: Path, gate: Gate
) -> None:
    path = tmp_path / "cache.sqlite3"

    async def main() -> None:
        link = new_link(path)
        await link.load()
        link.synced(generation(5, 1))
        await wait_on_loop(gate.entered)
        for dispatch in generation(5, 2, first_id=100):
            link.changed(dispatch.id, dispatch)
        link.synced(generation(3, 3))  # the truth: replaces what waits
        gate.opened.set()
        await link.close()

    asyncio.run(main())
    assert gate.threads == ["dispatch-cache-1_0"] * 2
    assert load(path) == generation(3, 3)


def test_close_writes_what_waits_for_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"

    async def main() -> None:
        link = new_link(path, flush_interval=timedelta(hours=1))
        await link.load()
        link.synced(generation(2, 1))
        await link.flushed()
        link.changed(generation(1, 2)[0].id, generation(1, 2)[0])
        link.changed(generation(2, 1)[1].id, None)
        link.handled(NOW)
        await link.close()  # long before the interval

    asyncio.run(main())
    assert load(path) == generation(1, 2)
    cache = DispatchCache.open(path, 1, clock=lambda: NOW + timedelta(hours=1))
    state = cache.load()
    cache.close()
    assert state is not None and state.handled_until == NOW


async def test_changes_are_written_whenever_max_pending_wait_and_at_close(
    tmp_path: Path, commits: list[str]
) -> None:
    path = tmp_path / "cache.sqlite3"
    link = new_link(path, flush_interval=timedelta(hours=1), max_pending=2000)
    await link.load()
    link.synced(generation(3000, 1))
    await link.flushed()
    before = count_commits(commits)
    changes: list[tuple[DispatchId, Any]] = [
        (dispatch.id, dispatch) for dispatch in generation(3000, 2)
    ]
    changes += [(DispatchId(dispatch_id), None) for dispatch_id in range(1, 2001)]
    assert len(changes) == 5000
    for number, (dispatch_id, held) in enumerate(changes, start=1):
        link.changed(dispatch_id, held)
        await asyncio.sleep(0)  # as from the stream: the loop runs in between
        if number == 1999:
            assert count_commits(commits) == before  # the interval is an hour
    await link.close()
    # 5,000 changes of 3,000 ids: whenever 2,000 distinct ids wait, plus close.
    assert count_commits(commits) - before == 3
    assert load(path) == generation(1000, 2, first_id=2001)


async def test_changes_are_written_after_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    link = new_link(path, flush_interval=timedelta(milliseconds=200))
    await link.load()
    link.synced(generation(3, 1))
    await link.flushed()
    link.changed(DispatchId(7), wire_dispatch(7))
    link.changed(DispatchId(1), None)
    await asyncio.sleep(0.1)
    assert [int(d.id) for d in load(path)] == [1, 2, 3]
    await asyncio.sleep(0.15)
    # Another connection sees the write: it is committed, not just buffered.
    assert [int(d.id) for d in load(path)] == [2, 3, 7]
    await link.close()


def test_bad_write_options_are_named(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with pytest.raises(ValueError, match="max_pending"):
        new_link(path, max_pending=0)
    with pytest.raises(ValueError, match="flush_interval"):
        new_link(path, flush_interval=timedelta(seconds=-1))
