# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""One service per database file: an exclusive lock on a file beside it.

Two services on one file would both accept writes, but each streams only its
own changes, so clients of one would silently miss the writes made through
the other. The lock is held while a service runs and is released by the
operating system when the process ends, however it ends (kill -9 included).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ._storage import Database, StorageError

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def lock_path(database: Database) -> Path:
    """Return the lock file of a database file.

    Args:
        database: The database file.

    Returns:
        `<database>.lock`, beside it.
    """
    path = Path(database)
    return path.with_name(path.name + ".lock")


class DatabaseLock:
    """An exclusive lock on a database file, for as long as a service runs."""

    def __init__(self, database: Database) -> None:
        """Prepare the lock; nothing is locked until `acquire()`.

        Args:
            database: The database file; `":memory:"` needs no lock.
        """
        self._database = database
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            StorageError: If another service holds it.
            OSError: If the lock file cannot be created.
        """
        if os.fspath(self._database) == ":memory:" or self._fd is not None:
            return
        path = lock_path(self._database)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            raise StorageError(
                f"the database {os.fspath(self._database)!r} is already served by "
                f"another service (it holds {str(path)!r}); stop that one, or use "
                "another database file"
            )
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
