"""What can go wrong with a device database file, as duru's errors.

SQLite reports a damaged page, a full disk, a lock held by another process or
a read-only file as ``sqlite3`` exceptions with an error code. The whole device
store (its write path, its reads, opening a file, the CLI) turns them into
duru's errors here, in one place, so a caller sees one clear StoreError and
its ``retryable`` flag instead of a bare ``sqlite3.OperationalError``. Codes
that mean a bug in duru (a syntax error, a misuse) are not mapped and keep
their traceback.

:func:`check_wal_owner` guards against a failure SQLite cannot see: a ``-wal``
file of another database lying beside the file, which SQLite would replay
into it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from duru.errors import CorruptDatabase, StoreError

_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_PROTOCOL})


def store_failure(exc: sqlite3.Error, path: Path, *, writing: bool = False) -> StoreError | None:
    """duru's error for an SQLite failure of the file at ``path``; None for any other error.

    ``writing`` says the failure ended a write that was rolled back, which the
    message then says. Locks are ``retryable``; a full disk is not (until
    space is freed).
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    nothing = "; nothing was written" if writing else ""
    if primary == sqlite3.SQLITE_NOTADB:
        return CorruptDatabase(f"{path} is not a readable SQLite database: {exc}")
    if primary == sqlite3.SQLITE_CORRUPT:
        return CorruptDatabase(f"{path} is damaged: {exc} (the file was left as it is)")
    if primary in _BUSY:
        return StoreError(
            f"{path}: {exc} (another process holds it){nothing}; try again", retryable=True
        )
    if primary == sqlite3.SQLITE_FULL:
        return StoreError(f"{path}: the disk is full ({exc}){nothing}; free some space")
    if primary == sqlite3.SQLITE_READONLY:
        return StoreError(f"{path} is read-only ({exc}){nothing}")
    if primary == sqlite3.SQLITE_IOERR:
        name = getattr(exc, "sqlite_errorname", "SQLITE_IOERR")
        return StoreError(f"{path} could not be read or written ({exc}, {name}){nothing}")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return StoreError(f"cannot open {path} ({exc}){_folder_hint(path)}")
    return None


def raise_failure(exc: sqlite3.Error, path: Path, *, writing: bool = False) -> NoReturn:
    """Raise :func:`store_failure` of ``exc`` (from it), or ``exc`` itself when it is none."""
    failure = store_failure(exc, path, writing=writing)
    if failure is None:
        raise exc
    raise failure from exc


@contextmanager
def sqlite_failures(path: Path, *, writing: bool = False) -> Iterator[None]:
    """Turn SQLite failures of the file at ``path`` inside the block into duru's errors."""
    try:
        yield
    except sqlite3.Error as exc:
        raise_failure(exc, path, writing=writing)


def check_wal_owner(path: Path) -> None:
    """CorruptDatabase when the ``-wal`` file beside ``path`` belongs to another database.

    SQLite replays any well-formed WAL it finds beside a file (a backup restored
    over the file, a folder copied in pieces), silently putting the other
    database's pages into this one. The device id in the file alone and the one
    seen through the WAL must agree. Costs two short read-only connections, and
    only when a non-empty ``-wal`` exists; an undecidable case (no device id on
    either side yet) passes.
    """
    wal = Path(f"{path}-wal")
    try:
        if wal.stat().st_size == 0:
            return
    except OSError:
        return
    uri = path.resolve().as_uri()
    # immutable=1 reads the file alone, ignoring the WAL; mode=ro reads it through the WAL
    # and, being read-only, can never checkpoint the WAL into the file.
    alone = _device_id(f"{uri}?immutable=1")
    seen = _device_id(f"{uri}?mode=ro") if alone is not None else None
    if seen is not None and seen != alone:
        raise CorruptDatabase(
            f"{wal} belongs to another database (device {seen}; {path.name} is device"
            f" {alone}): SQLite would copy its pages into {path.name}, so neither file was"
            f" opened or changed; move {wal.name} away to open the database"
        )


def _device_id(uri: str) -> str | None:
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        found = conn.execute("SELECT value FROM duru_meta WHERE key = 'device_id'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if found is None else str(found[0])


def _folder_hint(path: Path) -> str:
    folder = path.parent if str(path.parent) else Path(".")
    if folder.is_dir() and not os.access(folder, os.W_OK):
        return (
            f": its folder is read-only, and SQLite must make {path.name}-wal and"
            f" {path.name}-shm beside it"
        )
    return ""
