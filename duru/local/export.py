"""Export a device database as one JSON-able object, the same for equal databases.

Each entity's table becomes a list of its rows (model field names, stored
values, no storage-only columns such as ``doc_id``), ordered by the entity's
key; ``quarantine`` rows come with ``row_json`` parsed. With sorted keys the
JSON text of two databases holding the same rows is byte-identical.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from duru.local.db import Database
from duru.local.rows import columns
from duru.local.schema import quote
from duru.model import ENTITIES, Row

QUARANTINE = "quarantine"
_QUARANTINE_SQL = (
    "SELECT id, source, source_table, source_key, reason, row_json, created_at"
    " FROM quarantine ORDER BY id"
)


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


def export_json(db: Database, *, indent: int | None = None) -> str:
    """:func:`export_all` as JSON text with sorted keys (byte-identical for equal data)."""
    return json.dumps(export_all(db), sort_keys=True, ensure_ascii=False, indent=indent)


def write_export(db: Database, path: str | Path) -> dict[str, int]:
    """Write :func:`export_json` (indented) to ``path`` atomically; returns rows per table.

    The text goes to a temporary file beside ``path``, is synced to disk and
    renamed over ``path``, so a full disk or a kill leaves the old file (or
    none), never half a backup. Raises OSError as the file system does; the
    temporary file never outlives a failure.
    """
    path = Path(path)
    data = export_all(db)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2) + "\n"
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return {table: len(rows) for table, rows in data.items()}


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX).
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parsed(row: Row) -> Row:
    parsed: Any = json.loads(row["row_json"])
    return {**row, "row_json": parsed}
