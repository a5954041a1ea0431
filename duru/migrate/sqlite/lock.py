"""One migration process per database file: an advisory lock beside it.

``flock`` locks go away with the process that holds them (even on SIGKILL),
so a crash never leaves a stale lock. The lock is re-entrant within a process
(a run that rolls itself back takes it again).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from duru.errors import MigrationError

_held: dict[str, tuple[int, int]] = {}


@contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """Hold ``<db>.migrate.lock``; MigrationError when another process holds it."""
    key = str(db_path.resolve())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    path = db_path.with_name(db_path.name + ".migrate.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise MigrationError(
            f"another process is migrating {db_path}; wait for it to finish", retryable=True
        ) from exc
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
