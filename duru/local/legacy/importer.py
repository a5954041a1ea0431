"""``import_legacy``: a version 11 device file into a new duru device database.

The source is opened read-only and never changed. The target is a
:class:`duru.local.Database`, written in one transaction: every row through
the model's ``complete_row`` with its outbox op (in bulk, see
:mod:`duru.local.legacy.writer`), quarantined rows through
``Database.quarantine``, and the notes' full-text index in one statement at
the end (see :mod:`duru.local.legacy.search`). Before the transaction
commits, the accounting is checked and compared with the rows actually in
the target. The database is built in a partial file beside the target and
named only when complete (:mod:`duru.local.staging`): when anything fails, or
the process is killed, no target is left behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from duru.errors import LegacyImportError
from duru.local.db import Database
from duru.local.legacy.reader import LegacyReader
from duru.local.legacy.report import QUARANTINE_SOURCE, ImportReport
from duru.local.legacy.run import ImportRun, Progress
from duru.local.legacy.search import search_index_deferred
from duru.local.legacy.spec import LEGACY_TABLES, LEGACY_VERSION
from duru.local.legacy.tables import load_table
from duru.local.legacy.values import map_id
from duru.local.staging import check_new_target, partials, staged
from duru.model import now_ms

# Enough page cache for the bulk load's indexes; this connection only.
_IMPORT_CACHE_KIB = 524_288


def import_legacy(source: Path, target: Path, *, progress: Progress | None = None) -> ImportReport:
    """Import the version 11 file ``source`` into a new device database at ``target``.

    Every source row is imported, merged or quarantined, and the report
    counts them per table. ``progress(table, done, total)`` is called while
    tables are read. The database is built beside ``target`` and takes its
    name only once complete (:mod:`duru.local.staging`): a killed import
    leaves no ``target``, and the next one starts over by itself. Raises
    NotFound (no source, or no folder for the target), CorruptDatabase
    (source unreadable), SchemaMismatch (source is not version 11, naming
    what is missing), UsageError (target exists and is not empty) and
    LegacyImportError (rows not accounted for).
    """
    source, target = Path(source), Path(target)
    check_new_target(target)
    started = time.perf_counter()
    report = ImportReport(source, target)
    with LegacyReader.open(source) as reader:
        for name in reader.unknown_tables():
            report.warnings.append(
                f"table {name} ({reader.count(name)} rows) is not part of version"
                f" {LEGACY_VERSION}: not imported"
            )
        for abandoned in partials(target):
            if not abandoned.running:
                report.warnings.append(
                    f"an earlier {abandoned.kind} into {target} did not finish: started over"
                )
        with staged(target, "import") as partial:
            db = Database.open(partial)
            try:
                _load(reader, db, report, progress)
            finally:
                map_id.cache_clear()  # the ids of this file are of no use to the next
                db.close()
    report.seconds = time.perf_counter() - started
    return report


def _load(
    reader: LegacyReader, db: Database, report: ImportReport, progress: Progress | None
) -> None:
    db.conn.execute(f"PRAGMA cache_size = -{_IMPORT_CACHE_KIB}")
    with db.transaction():
        run = ImportRun(reader, db, report, now_ms(), progress)
        with search_index_deferred(db):
            for spec in LEGACY_TABLES:
                load_table(run, spec)
        report.check()
        verify_accounting(db, report)
        db.set_meta("legacy_import", _provenance(report))


def verify_accounting(db: Database, report: ImportReport, subject: str = "the target") -> None:
    """LegacyImportError unless ``db`` holds exactly what the report counts.

    Rows per table, quarantined rows per source table and outbox ops must all
    equal the report's figures; ``subject`` names the database in the message.
    """
    off = []
    for spec in LEGACY_TABLES:
        counted = report.table(spec.name)
        if spec.entity is not None:
            held = db.scalar(f'SELECT count(*) FROM "{spec.entity.table}"')
            if held != counted.imported:
                off.append(f"{spec.entity.table} holds {held}, imported {counted.imported}")
        kept = db.scalar(
            "SELECT count(*) FROM quarantine WHERE source = ? AND source_table = ?",
            [QUARANTINE_SOURCE, spec.name],
        )
        if kept != counted.quarantined:
            off.append(f"quarantine holds {kept} {spec.name} rows, counted {counted.quarantined}")
    ops = db.scalar("SELECT count(*) FROM outbox")
    if ops != report.totals["imported"]:
        off.append(f"outbox holds {ops} ops for {report.totals['imported']} imported rows")
    if off:
        raise LegacyImportError(f"{subject} does not match the accounting: " + "; ".join(off))


def _provenance(report: ImportReport) -> str:
    return json.dumps(
        {"source": str(report.source), "version": LEGACY_VERSION, "totals": report.totals},
        ensure_ascii=False,
        sort_keys=True,
    )
