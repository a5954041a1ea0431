"""Migration 0001: a version 11 app file, upgraded in place to duru's device schema 1.

This is what the app's "Migration 12" tried (foreign keys, performance
indexes) plus everything since, done safely. The row mapping is not written
here: the stream drives the legacy import itself (:mod:`duru.local.legacy`:
the same reading of every column, the same orphans, duplicates, trees,
filings and quarantine), so an upgraded file holds what ``duru import`` makes
of the same file. The engine adds the phases around it:

- bridge: the v11 tables are set aside as ``_duru_legacy_<name>`` (two of
  their names are duru's too) and fenced, duru's tables are created (the
  search index comes after the load), and the import is tried on a sample;
- migrate: the import runs as one stream, committed at checkpoints (rollback
  points). The import writes in an order fixed by the file, so after a crash
  the stream replays the import up to the last checkpoint without writing,
  which rebuilds the import's state (what is imported, what waits for its
  parent), and carries on. Then the search index, the device id, the stamp;
- cleanup: the v11 tables are dropped once the accounting has been checked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from duru.errors import ConstraintViolation, SchemaMismatch
from duru.local.db import Database
from duru.local.legacy import LEGACY_TABLES, LEGACY_VERSION, ImportReport
from duru.local.legacy.importer import verify_accounting
from duru.local.legacy.reader import LegacyReader, SourceRow
from duru.local.legacy.run import ImportRun
from duru.local.legacy.tables import load_table
from duru.local.legacy.writer import BulkWriter
from duru.local.schema import META_DDL
from duru.migrate.migration import Migration
from duru.migrate.ops import (
    AddSearch,
    CreateTable,
    DropTable,
    Generated,
    Operation,
    Phase,
    RawSQL,
    RenameTable,
    SetMeta,
    StreamData,
)
from duru.migrate.sqlite.device_spec import table_spec
from duru.migrate.sqlite.steps import Checkpoint, StepContext
from duru.migrate.steps import Chunk, StepResult
from duru.model import ENTITIES, MODEL_FINGERPRINT, NOTE, Entity, Row, complete_row, now_ms

SET_ASIDE = "_duru_legacy_"
_NOW_KEY = "legacy_migration_now"


class SetAsideReader(LegacyReader):
    """The import's reader, over the v11 tables under their set-aside names."""

    def tables(self) -> list[str]:
        return [t[len(SET_ASIDE) :] for t in super().tables() if t.startswith(SET_ASIDE)]

    def columns(self, table: str) -> tuple[str, ...]:
        return super().columns(_aside(table))

    def count(self, table: str, column: str | None = None) -> int:
        return super().count(_aside(table), column)

    def rows(self, table: str) -> Iterator[SourceRow]:
        return super().rows(_aside(table))

    def row(self, table: str, rowid: int) -> SourceRow:
        return super().row(_aside(table), rowid)


def _aside(table: str) -> str:
    # Idempotent: the reader's own methods call each other with names already set aside.
    return table if table.startswith(SET_ASIDE) else SET_ASIDE + table


class _Done(Exception):
    """The sample has seen enough writes."""


class StreamDatabase(Database):
    """The import's Database during the stream: counts writes, replays, checkpoints.

    Every write of the import is a position in the stream: an insert (through
    :class:`StreamWriter`) or a quarantined row (through :meth:`quarantine`).
    The first ``skip`` were committed by an earlier process: they are not
    written again but answered as they were then (an insert succeeded when its
    row is there with its values; else it was refused), so the import's state
    comes out the same. After any later write a checkpoint may commit.
    Transactions are the engine's: the stream's own is open throughout.
    """

    def __init__(self, outer: Database, checkpoint: Checkpoint, now: int) -> None:
        super().__init__(outer.conn, outer.path)
        self.outer = outer
        self.checkpoint = checkpoint
        self.now = now
        self.skip = checkpoint.resume_from or 0
        self.position = 0
        self.placed = 0
        self.kept = 0
        self.writer: BulkWriter | None = None

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self.outer.transaction() as db:
            yield db

    def quarantine(self, source: str, table: str, key: str | None, reason: str, row: Row) -> None:
        if self.advance():
            return
        super().quarantine(source, table, key, reason, row)
        self.kept += 1
        self.maybe_checkpoint()

    def advance(self) -> bool:
        """Count one write; True when it is replayed (committed before, not written again)."""
        self.position += 1
        return self.position <= self.skip

    def replayed(self, e: Entity, values: Row) -> Row:
        """The answer an insert got when it was first written."""
        stored = self.find(e, str(values[e.key]))
        if stored is None or stored != complete_row(e, values, self.now):
            raise ConstraintViolation(f"{e.name} {values[e.key]}: refused when first written")
        return stored

    def tail(self) -> Chunk | None:
        """What was written since the last checkpoint (None when nothing)."""
        if self.position <= max(self.skip, self.checkpoint.resume_from or 0):
            return None
        return self._chunk()

    def maybe_checkpoint(self) -> None:
        if not self.checkpoint.due(self.position):
            return
        if self.writer is not None:
            self.writer.flush()  # a committed row must have its outbox op committed with it
        chunk = self._chunk()
        self.placed = self.kept = 0
        self.checkpoint.commit(chunk)

    def _chunk(self) -> Chunk:
        rows = self.placed + self.kept
        details = {"from": self.checkpoint.resume_from, "hwm": self.position}
        return Chunk(self.position, rows, self.placed, self.kept, details=details)


class StreamWriter(BulkWriter):
    """The import's bulk writer, each insert a position of the stream."""

    def __init__(self, target: StreamDatabase) -> None:
        super().__init__(target, target.now)
        self.target = target
        target.writer = self

    def insert(self, entity: Entity, values: Row) -> Row:
        if self.target.advance():
            return self.target.replayed(entity, values)
        row = super().insert(entity, values)
        self.target.placed += 1
        self.target.maybe_checkpoint()
        return row


@dataclasses.dataclass(frozen=True)
class _SampleCheckpoint:
    rows: int

    @property
    def resume_from(self) -> int | None:
        return None

    def due(self, position: int) -> bool:
        return position >= self.rows

    def commit(self, chunk: Chunk) -> None:
        raise _Done


@dataclasses.dataclass(frozen=True)
class LegacyImportStream:
    """The legacy import as a stream of writes the engine can checkpoint and replay."""

    name: str = "the legacy import (duru.local.legacy)"
    tables: tuple[str, ...] = tuple(SET_ASIDE + t.name for t in LEGACY_TABLES)

    def total(self, ctx: StepContext) -> int:
        reader = SetAsideReader(ctx.conn, ctx.db.path)
        return sum(reader.count(t.name) for t in LEGACY_TABLES if reader.has_table(t.name))

    def sample(self, ctx: StepContext, rows: int) -> StepResult:
        """Run the import on a sample of its first writes, then undo them."""
        _check_tables(SetAsideReader(ctx.conn, ctx.db.path))
        ctx.conn.execute("SAVEPOINT duru_sample")
        try:
            report, _ = self._drive(ctx, _SampleCheckpoint(rows))
        except _Done:
            report = None
        finally:
            ctx.conn.execute("ROLLBACK TO duru_sample")
            ctx.conn.execute("RELEASE duru_sample")
        return StepResult(
            rows=rows, details={"sample_writes": rows, "completed": report is not None}
        )

    def run(self, ctx: StepContext, checkpoint: Checkpoint) -> tuple[Chunk | None, dict[str, Any]]:
        report, target = self._drive(ctx, checkpoint)
        report.check()
        verify_accounting(ctx.db, report, "the upgraded file")
        provenance = {
            "in_place": str(ctx.db.path),
            "version": LEGACY_VERSION,
            "totals": report.totals,
        }
        ctx.db.set_meta("legacy_import", json.dumps(provenance, sort_keys=True))
        ctx.conn.execute("DELETE FROM duru_meta WHERE key = ?", (_NOW_KEY,))
        return target.tail(), {"totals": report.totals, "replayed": target.skip}

    def _drive(
        self, ctx: StepContext, checkpoint: Checkpoint
    ) -> tuple[ImportReport, StreamDatabase]:
        reader = SetAsideReader(ctx.conn, ctx.db.path)
        report = ImportReport(ctx.db.path, ctx.db.path)
        now = _run_now(ctx.db)
        target = StreamDatabase(ctx.db, checkpoint, now)
        run = ImportRun(reader, target, report, now)
        # The import's writes go through its writer: count and replay them there.
        run.writer = StreamWriter(target)
        for spec in LEGACY_TABLES:
            load_table(run, spec)
        run.writer.flush()
        return report, target


def _run_now(db: Database) -> int:
    """The import's "now" (for rows without dates), kept so a replay reads rows the same."""
    found = db.meta(_NOW_KEY)
    if found is not None:
        return int(found)
    now = now_ms()
    db.set_meta(_NOW_KEY, str(now))
    return now


def _check_tables(reader: LegacyReader) -> None:
    missing = []
    for spec in LEGACY_TABLES:
        if not reader.has_table(spec.name):
            if not spec.optional:
                missing.append(f"missing table {spec.name}")
            continue
        have = {c.lower() for c in reader.columns(spec.name)}
        lacking = [c for c in spec.required_columns if c not in have]
        if lacking:
            missing.append(f"table {spec.name} lacks column(s) {', '.join(lacking)}")
    if missing:
        raise SchemaMismatch(
            f"not a version {LEGACY_VERSION} Duru Notes database: " + "; ".join(missing)
        )


def _bulk_spec(e: Entity) -> CreateTable:
    # Search comes after the load (AddSearch): indexing row by row is far slower.
    return CreateTable(dataclasses.replace(table_spec(e), after=(), fill=()))


def _ops() -> tuple[Operation, ...]:
    set_aside: list[Operation] = [
        RenameTable(t.name, SET_ASIDE + t.name, if_exists=True) for t in LEGACY_TABLES
    ]
    meta = RawSQL(";\n".join(META_DDL), phase=Phase.BRIDGE, why="duru's own tables")
    tables = [_bulk_spec(e) for e in ENTITIES]
    drops = [DropTable(SET_ASIDE + t.name, if_exists=True) for t in LEGACY_TABLES]
    return (
        *set_aside,
        meta,
        *tables,
        StreamData(LegacyImportStream(), targets=tuple(e.table for e in ENTITIES)),
        AddSearch(table_spec(NOTE)),
        SetMeta("device_id", Generated.UUID),
        *drops,
    )


LEGACY_V11 = Migration(
    "0001_legacy_v11",
    f"legacy:{LEGACY_VERSION}",
    "1",
    _ops(),
    description="a version 11 app file, upgraded in place to device schema 1",
    fingerprint=MODEL_FINGERPRINT,
)
