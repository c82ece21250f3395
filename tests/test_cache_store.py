# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The cache store on real SQLite files: round trip, batching, safety."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from frequenz.dispatch._cache import CacheUnavailable, DispatchCache

from .cache_helpers import (
    BASE,
    count_commits,
    generation,
    varied_dispatches,
    wire_dispatch,
)

NOW = BASE + timedelta(minutes=5)


def clock() -> Any:
    return NOW


def open_cache(path: Path, microgrid: int = 1, **options: Any) -> DispatchCache:
    return DispatchCache.open(path, microgrid, clock=clock, **options)


def write(path: Path, dispatches: list[Any], synced_at: Any = BASE) -> None:
    cache = open_cache(path)
    cache.replace_all(dispatches, synced_at)
    cache.close()


def aside(path: Path, reason: str) -> list[Path]:
    return sorted(
        p
        for p in path.parent.glob(f"{path.name}.{reason}-*")
        if not p.name.endswith(("-wal", "-shm"))
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    dispatches = varied_dispatches()
    write(path, dispatches)
    cache = open_cache(path)
    state = cache.load()
    cache.close()
    assert state is not None
    assert state.dispatches == dispatches
    for loaded, original in zip(state.dispatches, dispatches, strict=True):
        assert loaded.start_time == original.start_time
        assert loaded.recurrence == original.recurrence
        assert loaded.payload == original.payload
        assert not loaded.deleted
    assert state.synced_at == BASE
    assert state.age == NOW - BASE


def test_new_file_has_no_state(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "sub" / "cache.sqlite3")
    assert cache.load() is None
    # Stream changes alone are no full sync: still nothing to act on.
    cache.write_changes({1: wire_dispatch(1)})
    cache.close()
    cache = open_cache(tmp_path / "sub" / "cache.sqlite3")
    assert cache.load() is None
    cache.close()


def test_replace_all_replaces(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = open_cache(path)
    cache.replace_all(generation(10, 1), BASE)
    cache.replace_all(generation(5, 2, first_id=8), BASE + timedelta(minutes=1))
    cache.close()
    cache = open_cache(path)
    state = cache.load()
    assert state is not None
    assert state.dispatches == generation(5, 2, first_id=8)
    assert state.synced_at == BASE + timedelta(minutes=1)
    # Unknown file content before load; after it, an unchanged full sync writes
    # no dispatch row (only its instant).
    cache.replace_all(state.dispatches, BASE + timedelta(minutes=2))
    cache.close()


def test_write_changes_is_one_transaction(tmp_path: Path, commits: list[str]) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = open_cache(path)
    cache.replace_all(generation(3000, 1), BASE)
    before = count_commits(commits)
    changes: dict[int, Any] = {int(d.id): d for d in generation(3000, 2)}
    changes.update(dict.fromkeys(range(1, 2001)))  # deleted
    assert len(changes) == 3000
    assert cache.write_changes(changes)
    assert count_commits(commits) - before == 1
    assert cache.transactions == 2
    cache.close()
    cache = open_cache(path)
    state = cache.load()
    cache.close()
    assert state is not None
    assert state.dispatches == generation(1000, 2, first_id=2001)


def test_other_microgrid_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1))
    with caplog.at_level(logging.ERROR):
        cache = open_cache(path, microgrid=2)
    assert cache.load() is None
    cache.close()
    assert "holds microgrid 1, not microgrid 2" in caplog.text
    assert len(aside(path, "microgrid")) == 1
    # The original file is intact where it was moved to.
    moved = open_cache(aside(path, "microgrid")[0])
    state = moved.load()
    moved.close()
    assert state is not None and len(state.dispatches) == 3


def test_sync_in_the_future_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1), synced_at=NOW + timedelta(hours=2))
    cache = open_cache(path)
    with caplog.at_level(logging.ERROR):
        assert cache.load() is None
    cache.close()
    assert "clock reset" in caplog.text
    assert len(aside(path, "future")) == 1


def test_max_age_refuses_an_older_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1))
    cache = open_cache(path)
    with caplog.at_level(logging.WARNING):
        assert cache.load(max_age=timedelta(minutes=4)) is None
    assert "older than" in caplog.text
    state = cache.load(max_age=timedelta(minutes=5))
    cache.close()
    assert state is not None and len(state.dispatches) == 3
    assert not list(tmp_path.glob("cache.sqlite3.*-*"))


@pytest.mark.parametrize("what", ["schema", "library"])
def test_other_version_is_moved_aside(tmp_path: Path, what: str) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1))
    with sqlite3.connect(path) as db:
        if what == "schema":
            db.execute("PRAGMA user_version = 99")
        else:
            db.execute("UPDATE meta SET value = '0.0.1' WHERE key = 'library_version'")
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "version")) == 1


def test_foreign_sqlite_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other (x)")
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "foreign")) == 1


def test_garbage_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(random.Random(1).randbytes(64 * 1024))
    cache = open_cache(path)
    assert cache.load() is None
    # The fresh cache in its place works.
    cache.replace_all(generation(2, 1), BASE)
    cache.close()
    assert len(aside(path, "corrupt")) == 1
    cache = open_cache(path)
    state = cache.load()
    cache.close()
    assert state is not None and len(state.dispatches) == 2


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file_is_moved_aside(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(2000, 1))
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(int(size * fraction))
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "corrupt")) == 1


@pytest.mark.parametrize("seed", range(12))
def test_garbage_inside_the_file_never_loads_broken(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "cache.sqlite3"
    original = generation(500, 1)
    write(path, original)
    rng = random.Random(seed)
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(rng.randrange(100, size - 64))
        file.write(rng.randbytes(rng.choice([1, 8, 64])))
    try:
        cache = open_cache(path)
    except CacheUnavailable:  # pragma: no cover  # only if it cannot be replaced
        pytest.fail("a damaged cache must be replaced, not fatal")
    state = cache.load()
    cache.close()
    # Either the damage hit unused bytes and everything is intact, or the file
    # was refused: never a partly wrong list.
    if state is not None:
        assert state.dispatches == original
    else:
        assert len(aside(path, "corrupt")) == 1


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="file permissions do not bind root",
)
def test_unreadable_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1))
    path.chmod(0)
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "unreadable")) == 1


def test_unusable_folder_raises_cache_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheUnavailable):
        open_cache(blocker / "cache.sqlite3")


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c")
    with pytest.raises(ValueError, match="synced_at"):
        cache.replace_all([], BASE.replace(tzinfo=None))
    cache.close()


def _kill_writer_after(path: Path, count: int, generations: int) -> int:
    """Run the writer until it committed `generations`, kill -9 it; return the last."""
    writer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("cache_writer.py")),
            str(path),
            str(count),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    last = 0
    try:
        assert writer.stdout is not None
        while last < generations:
            line = writer.stdout.readline()
            if not line:
                break
            last = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        assert writer.stdout is not None
        # Lines printed between the last read and the kill were committed too.
        for line in writer.stdout.read().split():
            last = int(line)
    return last


def test_kill_9_during_bursts_leaves_a_loadable_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    count = 400
    rng = random.Random(7)
    previous = 0
    for _kill in range(6):
        committed = _kill_writer_after(path, count, previous + rng.randrange(1, 8))
        cache = open_cache(path)
        state = cache.load()
        cache.close()
        assert state is not None, "a killed writer must leave a loadable cache"
        gens = {d.payload["gen"] for d in state.dispatches}
        assert len(state.dispatches) == count
        assert len(gens) == 1, f"a half-written transaction is visible: {gens}"
        loaded = int(gens.pop())
        # The last committed generation, or the one being committed at the kill.
        assert loaded in (committed, committed + 1)
        assert state.dispatches == generation(count, loaded)
        previous = loaded
        assert not list(tmp_path.glob("*.corrupt-*"))


def test_path_that_cannot_be_opened_is_moved_aside(tmp_path: Path) -> None:
    # A folder where the file should be: SQLite cannot open it (even as root).
    path = tmp_path / "cache.sqlite3"
    path.mkdir()
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "unreadable")) == 1
    assert path.is_file()


# Each column of one row, changed behind the store's back (the CRC not updated).
_TAMPERED = {
    "type": "'OTHER'",
    "start_us": "start_us + 1",
    "duration_us": "NULL",
    "target": "X'00'",
    "active": "0",
    "dry_run": "1",
    "payload": "'{\"gen\": 9}'",
    "recurrence": "X'0801'",
    "create_us": "create_us - 1",
    "update_us": "update_us + 1000000",
    "end_us": "0",
}


@pytest.mark.parametrize("column", sorted(_TAMPERED))
def test_a_changed_value_in_any_column_refuses_the_file(
    tmp_path: Path, column: str
) -> None:
    path = tmp_path / "cache.sqlite3"
    write(path, generation(50, 1))
    with sqlite3.connect(path) as db:
        db.execute(
            f"UPDATE dispatches SET {column} = {_TAMPERED[column]} WHERE id = 30"
        )
    cache = open_cache(path)
    assert cache.load() is None
    cache.close()
    assert len(aside(path, "corrupt")) == 1


def test_loaded_payloads_are_separate_and_equal_values_decode_equal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.sqlite3"
    # Many dispatches sharing each rule, target, duration and instant: decoded
    # once per distinct value, and still equal to the originals, row by row.
    originals = [
        wire_dispatch(index, payload={} if index % 2 else {"n": index // 10})
        for index in range(100, 200)
    ] + varied_dispatches()
    originals.sort(key=lambda dispatch: int(dispatch.id))  # the order loaded
    write(path, originals)
    cache = open_cache(path)
    state = cache.load()
    cache.close()
    assert state is not None
    assert state.dispatches == originals
    payloads = [dispatch.payload for dispatch in state.dispatches]
    assert len({id(payload) for payload in payloads}) == len(payloads)
    payloads[1]["changed"] = True
    assert "changed" not in payloads[3]


def test_a_cache_of_another_library_version_names_both_and_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An upgrade discards the cache (the module docstring says why): logged with
    # both versions, moved aside intact, and the fresh cache in its place works.
    path = tmp_path / "cache.sqlite3"
    write(path, generation(3, 1))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '0.0.1' WHERE key = 'library_version'")
    with caplog.at_level(logging.ERROR):
        cache = open_cache(path)
    assert "written by frequenz-dispatch 0.0.1, this is " in caplog.text
    assert cache.load() is None
    cache.replace_all(generation(2, 2), BASE)
    cache.close()
    cache = open_cache(path)
    state = cache.load()
    cache.close()
    assert state is not None and state.dispatches == generation(2, 2)
    with sqlite3.connect(aside(path, "version")[0]) as db:
        assert db.execute("SELECT count(*) FROM dispatches").fetchone()[0] == 3
