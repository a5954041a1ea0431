"""The device file a download writes into: it must hold no rows yet.

A download rebuilds a device database from the server; merging server rows into rows a
device already has is sync's job, so a file that holds any entity or outbox row is
refused with UsageError, before the passphrase is even tried.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from duru.errors import UsageError
from duru.local.db import Database
from duru.local.schema import quote
from duru.model import ENTITIES

OUTBOX = "outbox"
_TABLES = (*(e.table for e in ENTITIES), OUTBOX)


def require_empty_file(path: Path) -> None:
    """UsageError unless ``path`` is absent, zero bytes, or a database with no rows.

    Reads only (the file is opened read-only). A file SQLite cannot read is refused.
    """
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    if not path.is_file():
        raise UsageError(f"{path} is not a file; download needs a new or empty device file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            counts = _counts(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(
            f"{path} is not an empty device database ({exc}); download needs a new or empty file"
        ) from None
    _refuse_rows(path, counts)


def require_empty(db: Database) -> None:
    """UsageError when the open device database holds any entity or outbox row."""
    _refuse_rows(db.path, _counts(db.conn))


def remove_database(path: Path) -> None:
    """Delete an SQLite file and its WAL and shared-memory files, if present."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    present = {
        str(r[0]) for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    }
    return {
        t: int(conn.execute(f"SELECT count(*) FROM {quote(t)}").fetchone()[0])
        for t in _TABLES
        if t in present
    }


def _refuse_rows(path: Path, counts: dict[str, int]) -> None:
    full = {t: n for t, n in counts.items() if n}
    if full:
        listed = ", ".join(f"{n} {t}" for t, n in full.items())
        raise UsageError(
            f"{path} already holds rows ({listed}); download writes only into a new or empty "
            "device file (to merge with a device that has data, use sync)"
        )
