# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The cache file itself: created, recognised as this microgrid's, or moved aside.

A file that is not a cache of this microgrid written by this library version
(damaged, foreign, of another microgrid or version) is never acted on: it is
logged and renamed aside, kept for inspection, and a fresh cache takes its place.

A cache written by another library version is moved aside even when its schema
version matches, so a device that upgrades and then restarts offline starts
without a cache (as without the option) until the service answers. That is
deliberate: the schema version only changes when someone remembers to bump it,
while the meaning of the stored values follows the code that wrote them (the
row encoding, the payload and target conversions, the client's recurrence
model), and a silently misread cache would start or stop real equipment at the
wrong time, whereas a discarded one only waits for the service. The library
version is the one marker that cannot be forgotten.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Final

from frequenz.client.common.microgrid import MicrogridId

_logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
"""The layout of the file; another layout is never read."""

APPLICATION_ID: Final = 0x46444331
"""Marks an SQLite file as a dispatch cache ("FDC1" in the file header)."""

_SCHEMA: Final = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE dispatches (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    duration_us INTEGER,
    target BLOB NOT NULL,
    active INTEGER NOT NULL,
    dry_run INTEGER NOT NULL,
    payload TEXT NOT NULL,
    recurrence BLOB NOT NULL,
    create_us INTEGER NOT NULL,
    update_us INTEGER NOT NULL,
    end_us INTEGER,
    crc INTEGER NOT NULL
);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""


def library_version() -> str:
    """Return the version of this library, as recorded in cache files.

    Returns:
        The installed distribution's version, or "unknown".
    """
    try:
        return metadata.version("frequenz-dispatch")
    except metadata.PackageNotFoundError:  # pragma: no cover  # not installed
        return "unknown"


class CacheUnavailable(OSError):
    """The cache file can neither be used nor replaced (for example no permission)."""


class Rejected(Exception):
    """The file is not a usable cache; the message says why."""

    def __init__(self, reason: str, details: str) -> None:
        super().__init__(details)
        self.reason = reason


def move_aside(path: Path, reason: str, details: str) -> Path | None:
    """Rename a cache file (and its WAL files) aside, logging why.

    Args:
        path: The cache file.
        reason: A short word for the file name (`corrupt`, `microgrid`, ...).
        details: What was wrong, for the log.

    Returns:
        The new name, or None if there was no file.

    Raises:
        CacheUnavailable: If the file exists but cannot be renamed.
    """
    stamp = datetime.now(tz=timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    moved = False
    try:
        # The WAL files follow the main file's name, so they stay paired with it.
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                source.rename(Path(f"{target}{suffix}"))
                moved = True
    except OSError as error:
        raise CacheUnavailable(
            f"dispatch cache {path} is unusable ({details}) and cannot be moved"
            f" aside: {error}"
        ) from error
    if not moved:
        return None
    _logger.error(
        "Dispatch cache %s not used (%s): %s; moved aside to %s",
        path,
        reason,
        details,
        target,
    )
    return target


def connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """Open (or create) the file in autocommit mode, creating its folder.

    Returns:
        The connection, and whether the file was new or empty.

    Raises:
        CacheUnavailable: If the folder cannot be created.
    """
    existed = path.exists() and (path.is_dir() or path.stat().st_size > 0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CacheUnavailable(f"cannot open dispatch cache {path}: {error}") from error
    # Autocommit mode: every transaction is explicit (BEGIN IMMEDIATE ...).
    connection = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    return connection, not existed


def validate(db: sqlite3.Connection, path: Path, microgrid: MicrogridId) -> bool:
    """Check the file is this microgrid's cache; initialize an empty file.

    Returns:
        Whether the file was empty and has just been initialized.

    Raises:
        Rejected: If the file is not a usable cache (with the reason).
    """
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if application_id == 0 and tables == 0:
        _initialize(db, microgrid)
        return True
    if application_id != APPLICATION_ID:
        raise Rejected("foreign", f"{path} is an SQLite file of another application")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise Rejected(
            "version", f"schema version {version}, this library reads {SCHEMA_VERSION}"
        )
    written_by = read_meta(db, "library_version")
    if written_by != library_version():
        raise Rejected(
            "version",
            f"written by frequenz-dispatch {written_by}, this is {library_version()}",
        )
    cached_microgrid = read_meta(db, "microgrid_id")
    if cached_microgrid != str(int(microgrid)):
        raise Rejected(
            "microgrid",
            f"holds microgrid {cached_microgrid}, not microgrid {int(microgrid)}",
        )
    _configure(db)
    return False


def _configure(db: sqlite3.Connection) -> None:
    # WAL: a reader never sees a half-written transaction and a crash never
    # leaves one; NORMAL sync: a commit survives a process crash (a power loss
    # may lose the last commits, which a cache may lose).
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # pragma: no cover  # e.g. a network file system
        _logger.warning("Dispatch cache: journal mode is %s, not WAL", mode)
    db.execute("PRAGMA synchronous = NORMAL")


def _initialize(db: sqlite3.Connection, microgrid: MicrogridId) -> None:
    _configure(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        write_meta(db, "microgrid_id", str(int(microgrid)))
        write_meta(db, "library_version", library_version())
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def is_busy(error: Exception) -> bool:
    """Tell whether `error` means another connection holds the file's lock."""
    message = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in message or "busy" in message
    )


def rejection_reason(error: Exception) -> str:
    """Return the short word a file refused for `error` is moved aside with."""
    if isinstance(error, Rejected):
        return error.reason
    if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
        return "unreadable"
    return "corrupt"


def quick_check(db: sqlite3.Connection) -> None:
    """Check the file's integrity (SQLite's quick check).

    Raises:
        Rejected: If SQLite finds damage.
    """
    problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise Rejected("corrupt", "; ".join(map(str, problems)))


def read_meta(db: sqlite3.Connection, key: str) -> str | None:
    """Return the value of a meta key, None if it is not set."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def write_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    """Set a meta key (inside the caller's transaction)."""
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
