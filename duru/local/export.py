"""Export a device database as one JSON document, the same for equal databases.

Each entity's table becomes a list of its rows (model field names, stored
values, no storage-only columns such as ``doc_id``), ordered by the entity's
key; ``quarantine`` rows come with ``row_json`` parsed. The document also
holds :data:`EXPORT_KEY`, a header naming the export format, the device
schema version and the model fingerprint, so a restore can refuse an export
of another model. With sorted keys the JSON text of two databases holding the
same rows is byte-identical.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from duru.errors import UsageError
from duru.local.db import Database
from duru.local.rows import columns
from duru.local.schema import SCHEMA_VERSION, quote
from duru.local.staging import fsync_path
from duru.model import ENTITIES, MODEL_FINGERPRINT, Row

QUARANTINE = "quarantine"
EXPORT_KEY = "duru_export"  # no entity table has this name
EXPORT_FORMAT = 1
_QUARANTINE_SQL = (
    "SELECT id, source, source_table, source_key, reason, row_json, created_at"
    " FROM quarantine ORDER BY id"
)
# The files SQLite keeps beside a database: replacing any of them ruins it.
_DATABASE_FILES = ("", "-wal", "-shm", "-journal")


def export_header() -> dict[str, Any]:
    """What an export records about the build that made it (no time: equal data, equal text)."""
    return {
        "format": EXPORT_FORMAT,
        "model_fingerprint": MODEL_FINGERPRINT,
        "schema_version": SCHEMA_VERSION,
    }


def export_all(db: Database) -> dict[str, list[Row]]:
    """Every entity table and the quarantine, keyed by table name, rows ordered by key.

    Reads in one transaction, so the export is a consistent snapshot.
    """
    with db.snapshot():
        out = {
            e.table: db.rows(f"SELECT {columns(e)} FROM {quote(e.table)} ORDER BY {quote(e.key)}")
            for e in ENTITIES
        }
        out[QUARANTINE] = [_parsed(r) for r in db.rows(_QUARANTINE_SQL)]
    return out


def export_document(db: Database) -> dict[str, Any]:
    """:func:`export_all` with the :func:`export_header` under :data:`EXPORT_KEY`."""
    return {EXPORT_KEY: export_header(), **export_all(db)}


def export_json(db: Database, *, indent: int | None = None) -> str:
    """:func:`export_document` as JSON text with sorted keys (byte-identical for equal data)."""
    return _dumps(export_document(db), indent)


def check_export_target(db: Database, path: str | Path) -> bool:
    """Whether ``path`` exists; UsageError when a backup may never be written there.

    Refused: the database ``db`` itself or a file SQLite keeps beside it (also
    through a symbolic or hard link), a symbolic link, a folder, and anything
    else that is not a regular file (a device such as /dev/null, a pipe). An
    existing regular file may be replaced; whether it should is the caller's
    question.
    """
    path = Path(path)
    if _is_database_file(path, db.path):
        raise UsageError(
            f"{path} is the device database {db.path} or one of its files: a backup written"
            " there would destroy it; write it elsewhere"
        )
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        raise UsageError(
            f"{path} is a symbolic link (to {os.readlink(path)}): give the file's own path"
        )
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a folder: give a file name for the backup")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{path} is not a regular file (a device, pipe or socket): it is never replaced;"
            " use --out - for standard output"
        )
    return True


def write_export(db: Database, path: str | Path, *, replace: bool = True) -> dict[str, int]:
    """Write :func:`export_json` (indented) to ``path`` atomically; returns rows per table.

    The text goes to a temporary file beside ``path``, is synced to disk and
    renamed over ``path``, so a full disk or a kill leaves the old file (or
    none), never half a backup. ``path`` is checked by
    :func:`check_export_target` first (UsageError), again just before the
    rename; without ``replace`` an existing file is a UsageError too, also
    one that appears while the export is written. Raises OSError as the file
    system does; the temporary file never outlives a failure.
    """
    path = Path(path)
    if check_export_target(db, path) and not replace:
        raise _exists(path)
    data = export_document(db)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_dumps(data, 2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        exists = check_export_target(db, path)
        if replace:
            os.replace(partial, path)
        elif exists or not _link(partial, path):
            raise _exists(path)
    finally:
        Path(partial).unlink(missing_ok=True)
    fsync_path(path.parent)
    return {table: len(rows) for table, rows in data.items() if table != EXPORT_KEY}


def _link(partial: str, path: Path) -> bool:
    """Give ``partial`` the name ``path`` unless that exists (atomic); False when it does."""
    try:
        os.link(partial, path)
    except FileExistsError:
        return False
    except OSError:
        # No hard links on this file system (FAT, some network shares): check, then rename.
        if os.path.lexists(path):
            return False
        os.replace(partial, path)
    return True


def _exists(path: Path) -> UsageError:
    return UsageError(f"{path} already exists: not replaced")


def _is_database_file(path: Path, db_path: Path) -> bool:
    """True when ``path`` names ``db_path`` or its -wal, -shm or -journal, by any route."""
    target = path.resolve()
    for suffix in _DATABASE_FILES:
        own = Path(f"{db_path}{suffix}")
        if target == own.resolve():
            return True
        try:
            if os.path.samefile(path, own):  # a hard link, a bind mount
                return True
        except OSError:
            continue  # one of them does not exist
    return False


def _dumps(data: dict[str, Any], indent: int | None) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, indent=indent)


def _parsed(row: Row) -> Row:
    parsed: Any = json.loads(row["row_json"])
    return {**row, "row_json": parsed}
