"""The device file a download writes into: it must hold no rows yet, and a failure leaves it.

A download rebuilds a device database from the server; merging server rows into rows a
device already has is sync's job, so a file that holds any entity or outbox row is
refused with UsageError, before the passphrase is even tried. The download is built in a
staging file beside the target and moved over it only once complete
(:func:`replace_database`), so a failed or killed download never changes the target.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from duru.errors import StoreError, UsageError
from duru.local.db import Database
from duru.local.schema import quote
from duru.model import ENTITIES

OUTBOX = "outbox"
_TABLES = (*(e.table for e in ENTITIES), OUTBOX)


def require_empty_file(path: Path) -> None:
    """UsageError unless ``path`` is absent, zero bytes, or a database with no rows.

    Reads only (the file is opened read-only, and adds no file beside it). A file SQLite
    cannot read is refused.
    """
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    if not path.is_file():
        raise UsageError(f"{path} is not a file; download needs a new or empty device file")
    # Without a WAL file, immutable: a read-only open of a WAL-mode database would leave
    # new -wal and -shm files beside a target that must stay as it was.
    wal = _files(path)[1].exists()
    mode = "mode=ro" if wal else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
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
    for p in _files(path):
        p.unlink(missing_ok=True)


def staging_path(path: Path) -> Path:
    """Where a download builds the database that will replace ``path``: beside its real file.

    In the same folder (after following a symlink), so the final move is one rename.
    """
    real = path.resolve()
    return real.with_name(f".{real.name}.download-{os.getpid()}")


def replace_database(staging: Path, path: Path) -> None:
    """Move the closed database ``staging`` over ``path``, which must still hold no rows.

    The old file's WAL and shared-memory files go first: SQLite would replay an old WAL
    into the new file. The new file keeps the old one's permission bits. Raises
    UsageError (``staging`` untouched) when rows reached ``path`` meanwhile.
    """
    real = path.resolve()
    require_empty_file(real)
    if any(p.exists() for p in _files(staging)[1:]):
        raise StoreError(f"{staging} was not closed cleanly; the download is not complete")
    if real.exists():
        os.chmod(staging, stat.S_IMODE(real.stat().st_mode))
    for p in _files(real)[1:]:
        p.unlink(missing_ok=True)
    os.replace(staging, real)


def _files(path: Path) -> tuple[Path, Path, Path]:
    return (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))


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
            "device file (a device that has data syncs instead: `duru login`, then `duru sync`)"
        )
