"""Operations that copy rows on SQLite: table rebuilds, data transforms and streams.

Whatever SQLite cannot alter in place (a type, a foreign key, a new
constraint) is a table rebuild: bridge, chunked copy and swap
(:mod:`duru.migrate.sqlite.rebuild`). TransformData is a bridge and a chunked
copy (:mod:`duru.migrate.sqlite.transform`); StreamData a bridge and a
checkpointed stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from duru.errors import MigrationError, UsageError
from duru.migrate.ops import (
    AddForeignKey,
    ChangeType,
    DropForeignKey,
    Operation,
    Phase,
    RebuildTable,
    StreamData,
    TableSpec,
    TransformData,
    quote,
)
from duru.migrate.sqlite.builders import At, Ordered
from duru.migrate.sqlite.rebuild import TableRebuild
from duru.migrate.sqlite.rebuild_sql import fence_sql
from duru.migrate.sqlite.state import progress
from duru.migrate.sqlite.steps import (
    ChunkedStep,
    RowPosition,
    StepContext,
    StreamAction,
    StreamStep,
    TransactionStep,
)
from duru.migrate.sqlite.tables import count
from duru.migrate.sqlite.transform import DataTransform
from duru.migrate.sqlite.verify import ChunkVerifier
from duru.migrate.steps import Chunk, ChunkState, StepResult

# -- rebuilds -----------------------------------------------------------------


def rebuild_table(at: At, op: RebuildTable) -> list[Ordered]:
    return _rebuild_steps(at, op, op.spec, op.select, op.rejects_are_failures, op.describe())


def change_type(at: At, op: ChangeType) -> list[Ordered]:
    spec = _need_spec(op, op.spec)
    return _rebuild_steps(at, op, spec, {op.column: op.up}, op.rejects_are_failures, op.describe())


def add_foreign_key(at: At, op: AddForeignKey) -> list[Ordered]:
    spec = _need_spec(op, op.spec)
    return _rebuild_steps(at, op, spec, {}, op.rejects_are_failures, op.describe())


def drop_foreign_key(at: At, op: DropForeignKey) -> list[Ordered]:
    return _rebuild_steps(at, op, _need_spec(op, op.spec), {}, True, op.describe())


def _need_spec(op: Operation, spec: TableSpec | None) -> TableSpec:
    if spec is None:
        raise UsageError(f"{op.describe()}: on SQLite this rebuilds the table; give its spec")
    return spec


@dataclass
class _RebuildCopy:
    """The chunked copy of a rebuild, binding the old table's live columns on first use."""

    spec: TableSpec
    select: Mapping[str, str]
    rejects_are_failures: bool
    bound: dict[str, TableRebuild] = field(default_factory=dict)
    verifiers: dict[str, ChunkVerifier] = field(default_factory=dict)

    def rebuild(self, ctx: StepContext) -> TableRebuild:
        if "r" not in self.bound:
            self.bound["r"] = TableRebuild.bind(
                ctx.conn, self.spec, self.select, self.rejects_are_failures
            )
        return self.bound["r"]

    def verifier(self, ctx: StepContext) -> ChunkVerifier:
        """The step's verifier: one per run, so a new run never inherits a held chunk."""
        key = f"{ctx.run_id}/{ctx.step_key}"
        if key not in self.verifiers:
            for old in self.verifiers.values():
                old.drop()
            self.verifiers = {
                key: ChunkVerifier(
                    self.rebuild(ctx), ctx.db.path, ctx.config.cache_mb, ctx.config.mmap_mb
                )
            }
        return self.verifiers[key]

    def total(self, ctx: StepContext) -> int:
        return count(ctx.conn, self.spec.name)

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        # Every copied row is compared here, the held chunk's too.
        self.verifier(ctx).drop()
        self.rebuild(ctx).check_resume(ctx, state)

    def chunk(
        self, ctx: StepContext, after: RowPosition | None, limit: int, until: RowPosition | None
    ) -> Chunk | None:
        return self.rebuild(ctx).copy_chunk(ctx, after, limit, until, self.verifier(ctx))

    def finish(self, ctx: StepContext, state: ChunkState) -> tuple[ChunkState, dict[str, Any]]:
        verifier = self.verifier(ctx)
        verifier.drop()  # copy_chunk awaited the last chunk's verdict before it said done
        final, extra = self.rebuild(ctx).finish(ctx, state)
        return final, {**extra, "verify_seconds": round(verifier.busy_seconds, 3)}

    def release(self, ctx: StepContext) -> None:
        # A step stopped between chunks leaves its last chunk to check_resume's compare.
        for verifier in self.verifiers.values():
            verifier.drop()


def _rebuild_steps(
    at: At,
    op: Operation,
    spec: TableSpec,
    select: Mapping[str, str],
    rejects_are_failures: bool,
    title: str,
) -> list[Ordered]:
    table = spec.name
    copier = _RebuildCopy(spec, select, rejects_are_failures)
    copy_key = at.key("copy")
    preview = _preview(at.conn, spec, select, rejects_are_failures)
    rows = at.count(table)

    def bridge(ctx: StepContext) -> StepResult:
        return copier.rebuild(ctx).bridge(ctx, f"run {ctx.run_id}")

    def swap(ctx: StepContext) -> StepResult:
        return copier.rebuild(ctx).swap(ctx, _copied(ctx, copy_key))

    return [
        at.step(
            TransactionStep,
            "bridge",
            Phase.BRIDGE,
            f"{title}: shadow table, write fence, sample copy",
            sql=tuple(preview.bridge_sql("run <id>")),
            estimate=rows,
            action=bridge,
            rollback_point=True,
        ),
        at.step(
            ChunkedStep,
            "copy",
            Phase.MIGRATE,
            f"{title}: copy rows in chunks",
            sql=(preview.insert_sql(), preview.compare_sql()),
            estimate=rows,
            work=copier,
        ),
        at.step(
            TransactionStep,
            "swap",
            Phase.MIGRATE,
            f"{title}: swap in the new table",
            sql=tuple(preview.swap_sql()) + (f"PRAGMA foreign_key_check({quote(table)})",),
            estimate=rows,
            action=swap,
            foreign_keys_off=True,
        ),
    ]


def _preview(
    conn: sqlite3.Connection, spec: TableSpec, select: Mapping[str, str], rejects: bool
) -> TableRebuild:
    """The rebuild as it will run, for the plan (spec columns if the table is not there yet)."""
    try:
        return TableRebuild.bind(conn, spec, select, rejects)
    except MigrationError:
        return TableRebuild(spec, spec.columns, select, rejects)


def _copied(ctx: StepContext, copy_key: str) -> ChunkState:
    found = progress(ctx.conn, ctx.run_id, copy_key)
    if found is None or found.state != "done":
        raise MigrationError(f"{copy_key} has not finished; the swap cannot run")
    return found.chunk


# -- data ---------------------------------------------------------------------


@dataclass
class _TransformCopy:
    op: TransformData
    bound: dict[str, DataTransform] = field(default_factory=dict)

    def transform(self, ctx: StepContext) -> DataTransform:
        if "t" not in self.bound:
            self.bound["t"] = DataTransform.bind(ctx.conn, self.op)
        return self.bound["t"]

    def total(self, ctx: StepContext) -> int:
        return count(ctx.conn, self.op.source)

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        self.transform(ctx).check_resume(ctx, state)

    def chunk(
        self, ctx: StepContext, after: RowPosition | None, limit: int, until: RowPosition | None
    ) -> Chunk | None:
        # A transform walks its source by rowid: its positions are integers.
        lo = None if after is None else int(after)
        hi = None if until is None else int(until)
        return self.transform(ctx).chunk(ctx, lo, limit, hi)

    def finish(self, ctx: StepContext, state: ChunkState) -> tuple[ChunkState, dict[str, Any]]:
        return self.transform(ctx).finish(ctx, state)

    def release(self, ctx: StepContext) -> None:
        """Nothing to free: a transform holds nothing between chunks."""


def transform_data(at: At, op: TransformData) -> list[Ordered]:
    copier = _TransformCopy(op)
    rows = at.count(op.source)

    def bridge(ctx: StepContext) -> StepResult:
        return copier.transform(ctx).bridge(ctx, f"run {ctx.run_id}")

    read = f"SELECT rowid, <columns of {op.source} by name> FROM {quote(op.source)}"
    return [
        at.step(
            TransactionStep,
            "bridge",
            Phase.BRIDGE,
            f"{op.describe()}: write fence, mapper tried on a sample",
            sql=(f"CREATE TRIGGER _duru_fence_{op.source}_* ... RAISE(ABORT, ...)",),
            estimate=rows,
            action=bridge,
            quarantine_source=op.quarantine_source,
        ),
        at.step(
            ChunkedStep,
            "copy",
            Phase.MIGRATE,
            f"{op.describe()}: map rows in chunks",
            sql=(read + " WHERE rowid > ? ORDER BY rowid LIMIT ?", f"INSERT INTO {op.target} ..."),
            estimate=rows,
            work=copier,
            quarantine_source=op.quarantine_source,
        ),
    ]


def stream_data(at: At, op: StreamData) -> list[Ordered]:
    driver = op.driver
    steps: StreamAction = driver

    def bridge(ctx: StepContext) -> StepResult:
        for table in driver.tables:
            present = ctx.conn.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if present is not None and not _is_virtual(ctx.conn, table):
                for stmt in fence_sql(table, f"run {ctx.run_id}"):
                    ctx.conn.execute(stmt)
        result: StepResult = steps.sample(ctx, ctx.config.sample_rows)
        return result

    return [
        at.step(
            TransactionStep,
            "bridge",
            Phase.BRIDGE,
            f"{op.describe()}: write fences, the stream tried on a sample",
            sql=tuple(
                f"CREATE TRIGGER _duru_fence_{t}_* ... RAISE(ABORT, ...)" for t in driver.tables
            ),
            action=bridge,
        ),
        at.step(
            StreamStep,
            "copy",
            Phase.MIGRATE,
            f"{op.describe()}: checkpointed stream",
            sql=(f"{driver.name}: read {', '.join(driver.tables)} by column name, write rows",),
            work=steps,
        ),
    ]


def _is_virtual(conn: sqlite3.Connection, table: str) -> bool:
    found = conn.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
    return found is not None and str(found[0]).upper().startswith("CREATE VIRTUAL")
