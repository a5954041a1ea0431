"""``restore_export``: a ``duru export`` document back into a new device database.

The export must record the model fingerprint of this build (an export of
another model is refused: its rows would not fit). Every row goes back as
it was exported, stored values untouched, in one transaction: entity rows
through ``Database.insert`` with an outbox op each (an ``upsert`` based on
the row's version, as a new device queues what it holds, so the restored
rows reach the server; a stale one there becomes a sync conflict, never a
silent overwrite), the quarantine rows as they were. Before the transaction
commits, the rows in the database are counted against the export, table by
table. The database is built beside the target and named only when
complete (:mod:`duru.local.staging`), so a failed or killed restore leaves
no target. Exporting the restored database gives the identical document:
only what an export leaves out differs (the outbox, the device id, the
full-text index's internal doc ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duru.errors import CorruptDatabase, NotFound, SchemaMismatch, StoreError, UsageError
from duru.local.db import Database
from duru.local.export import EXPORT_FORMAT, EXPORT_KEY, QUARANTINE, export_header
from duru.local.staging import check_new_target, staged
from duru.model import ENTITIES, MODEL_FINGERPRINT, Entity, Row, from_local

_TABLES = {e.table for e in ENTITIES} | {QUARANTINE}
_QUARANTINE_COLUMNS = (
    "id",
    "source",
    "source_table",
    "source_key",
    "reason",
    "row_json",
    "created_at",
)


@dataclass
class RestoreReport:
    """Rows per table in the export and in the restored database (equal, or it failed)."""

    source: Path
    target: Path
    rows: dict[str, int] = field(default_factory=dict)
    outbox: int = 0

    def lines(self) -> list[str]:
        width = max(len(t) for t in self.rows)
        out = [f"{t:<{width}}  {n:>8} rows" for t, n in self.rows.items()]
        out.append(f"{'outbox':<{width}}  {self.outbox:>8} ops queued for upload")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "target": str(self.target),
            "rows": dict(self.rows),
            "outbox": self.outbox,
        }


def read_export(source: Path) -> dict[str, list[Row]]:
    """The tables of the export at ``source``, checked against this build's model.

    Raises NotFound (no file), CorruptDatabase (not a JSON export, or a table
    missing or malformed), SchemaMismatch (an export of another model or
    format, or one without the fingerprint).
    """
    source = Path(source)
    if not source.is_file():
        raise NotFound(f"no export at {source}")
    try:
        doc: Any = json.loads(source.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptDatabase(f"{source} is not a duru export (not JSON text: {exc})") from None
    if not isinstance(doc, dict):
        raise CorruptDatabase(f"{source} is not a duru export (not a JSON object)")
    _check_header(source, doc.get(EXPORT_KEY))
    tables = {k: v for k, v in doc.items() if k != EXPORT_KEY}
    missing, extra = sorted(_TABLES - set(tables)), sorted(set(tables) - _TABLES)
    if missing or extra:
        raise CorruptDatabase(
            f"{source} is not a whole export: missing {', '.join(missing) or 'nothing'};"
            f" unknown {', '.join(extra) or 'nothing'}"
        )
    for name, rows in tables.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise CorruptDatabase(f"{source}: table {name} is not a list of rows")
    return tables


def _check_header(source: Path, header: object) -> None:
    if not isinstance(header, dict):
        raise SchemaMismatch(
            f"{source} records no model fingerprint ({EXPORT_KEY}): it was made before"
            " exports did, or by hand; export the database again with this duru"
        )
    if header.get("format") != EXPORT_FORMAT:
        raise SchemaMismatch(
            f"{source} is export format {header.get('format')!r}; this duru reads"
            f" format {EXPORT_FORMAT}"
        )
    if header.get("model_fingerprint") != MODEL_FINGERPRINT:
        want = export_header()
        raise SchemaMismatch(
            f"{source} was exported by model {header.get('model_fingerprint')} (device schema"
            f" {header.get('schema_version')}); this duru is model {MODEL_FINGERPRINT} (schema"
            f" {want['schema_version']}): restore it with the duru that made it, then bring"
            " the database up to date with `duru migrate run`"
        )


def restore_export(source: Path, target: Path) -> RestoreReport:
    """Restore the export at ``source`` into a new device database at ``target``.

    Raises as :func:`read_export`; NotFound (no folder for the target),
    UsageError (target exists and is not empty), InvalidValue or
    ConstraintViolation (a row the model or the schema refuses: nothing is
    restored), StoreError (the database does not hold every row).
    """
    source, target = Path(source), Path(target)
    check_new_target(target)
    tables = read_export(source)
    report = RestoreReport(source, target)
    with staged(target, "restore") as partial:
        db = Database.open(partial)
        try:
            with db.transaction():
                # Parents may follow their children in key order (folders, subtasks).
                db.conn.execute("PRAGMA defer_foreign_keys = ON")
                for e in ENTITIES:
                    for row in tables[e.table]:
                        db.insert(e, _friendly(e, row))
                _restore_quarantine(db, tables[QUARANTINE])
                report.rows = _verify(db, tables, source)
                report.outbox = int(db.scalar("SELECT count(*) FROM outbox"))
        finally:
            db.close()
    return report


def _friendly(e: Entity, row: Row) -> Row:
    """``row`` as ``Database.insert`` takes it; UsageError for a field the model lacks."""
    unknown = sorted(set(row) - set(e.field_names))
    if unknown:
        raise UsageError(f"a {e.name} row of the export has unknown field(s) {', '.join(unknown)}")
    # Stored JSON text goes back through the model's encoder: decode it first.
    return {name: from_local(e.field(name), value) for name, value in row.items()}


def _restore_quarantine(db: Database, rows: list[Row]) -> None:
    marks = ", ".join("?" for _ in _QUARANTINE_COLUMNS)
    for row in rows:
        values = [row.get(c) for c in _QUARANTINE_COLUMNS]
        values[5] = json.dumps(row.get("row_json"), ensure_ascii=False)
        db.conn.execute(
            f"INSERT INTO quarantine ({', '.join(_QUARANTINE_COLUMNS)}) VALUES ({marks})", values
        )


def _verify(db: Database, tables: dict[str, list[Row]], source: Path) -> dict[str, int]:
    """Rows per table, checked: the database holds exactly what the export does."""
    held = {t: int(db.scalar(f'SELECT count(*) FROM "{t}"')) for t in tables}
    off = [
        f"{t} holds {held[t]}, the export {len(rows)}"
        for t, rows in tables.items()
        if held[t] != len(rows)
    ]
    if off:
        raise StoreError(
            f"the restore of {source} does not account for every row: " + "; ".join(off)
        )
    return {e.table: held[e.table] for e in ENTITIES} | {QUARANTINE: held[QUARANTINE]}
