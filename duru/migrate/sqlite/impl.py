"""How each operation runs on SQLite: the steps it becomes and the SQL they execute.

Simple DDL (create, rename, add column, index, meta) is one atomic step.
Whatever SQLite cannot alter in place (a type, a foreign key, a new
constraint) is a table rebuild: bridge, chunked copy and swap
(:mod:`duru.migrate.sqlite.rebuild`). TransformData is a bridge and a chunked
copy (:mod:`duru.migrate.sqlite.transform`). Each migration ends its migrate
phase with a ``stamp`` step that writes the new schema version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from duru.errors import MigrationError, UsageError
from duru.migrate.migration import Migration, order_steps
from duru.migrate.ops import (
    AddColumn,
    AddForeignKey,
    AddIndex,
    AddSearch,
    ChangeType,
    CreateTable,
    DropColumn,
    DropForeignKey,
    DropIndex,
    DropTable,
    Generated,
    Operation,
    Phase,
    RawSQL,
    RebuildTable,
    RenameColumn,
    RenameTable,
    SetMeta,
    StreamData,
    TableSpec,
    TransformData,
    quote,
)
from duru.migrate.sqlite.rebuild import TableRebuild, fence_sql
from duru.migrate.sqlite.state import progress
from duru.migrate.sqlite.steps import (
    AtomicStep,
    ChunkedStep,
    RowPosition,
    Step,
    StepContext,
    StreamAction,
    StreamStep,
)
from duru.migrate.sqlite.tables import count
from duru.migrate.sqlite.transform import DataTransform
from duru.migrate.sqlite.verify import ChunkVerifier
from duru.migrate.steps import Chunk, ChunkState, StepResult
from duru.model import new_id

Ordered = tuple[tuple[int, ...], Step]
OpT = TypeVar("OpT", bound=Operation)

_NOT_IN_A_MIGRATION = ("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "VACUUM")


def migration_steps(conn: sqlite3.Connection, m: Migration) -> list[Step]:
    """Every step of migration ``m``, in run order (phase, then operation).

    Raises UsageError for an operation SQLite cannot run, and for a rebuild
    or transform of a table that an earlier operation alters in the migrate
    phase: its bridge runs first (bridge phase) and would see the table
    before that change. Such a change belongs in a migration of its own.
    """
    _check_order(m)
    out: list[Ordered] = []
    for i, op in enumerate(m.ops):
        handler = _HANDLERS.get(type(op))
        if handler is None:
            raise UsageError(f"SQLite cannot run {type(op).__name__} operations")
        out += handler(_Op(conn, m, i), op)
    out.append(((len(m.ops), 0), _stamp(m)))
    return order_steps(out)


def _check_order(m: Migration) -> None:
    altered: dict[str, str] = {}
    for op in m.ops:
        for table in _reads_in_bridge(op):
            if table in altered:
                raise UsageError(
                    f"{m.id}: {op.describe()} is bridged before {altered[table]} runs;"
                    " put one of them in a migration of its own"
                )
        if op.phase == Phase.MIGRATE:
            for table in _alters(op):
                altered.setdefault(table, op.describe())


def _reads_in_bridge(op: Operation) -> tuple[str, ...]:
    if isinstance(op, RebuildTable):
        return (op.spec.name,)
    if isinstance(op, ChangeType | AddForeignKey | DropForeignKey):
        return (op.table,)
    if isinstance(op, TransformData):
        return (op.source, op.target)
    return ()


def _alters(op: Operation) -> tuple[str, ...]:
    if isinstance(op, AddColumn | DropColumn | RenameColumn):
        return (op.table,)
    if isinstance(op, RenameTable):
        return (op.table, op.to)
    return ()


@dataclass(frozen=True)
class _Op:
    """Where an operation sits: the connection (for estimates), its migration and index."""

    conn: sqlite3.Connection
    migration: Migration
    index: int

    def key(self, slug: str) -> str:
        return f"{self.migration.id}/{self.index:02d}.{slug}"

    def count(self, table: str) -> int | None:
        try:
            return count(self.conn, table)
        except sqlite3.OperationalError:
            return None  # created by an earlier operation of this migration

    def step(self, cls: type[Step], slug: str, phase: Phase, title: str, **kw: Any) -> Ordered:
        sub = ("bridge", "apply", "copy", "swap").index(slug) if slug in _SUBS else 0
        return (self.index, sub), cls(self.key(slug), self.migration.id, phase, title, **kw)


_SUBS = frozenset({"bridge", "apply", "copy", "swap"})


def _ddl(at: _Op, op: Operation, statements: list[str], **kw: Any) -> list[Ordered]:
    def run(ctx: StepContext) -> StepResult:
        for stmt in statements:
            ctx.conn.execute(stmt)
        return StepResult(details={"statements": len(statements)})

    return [
        at.step(
            AtomicStep, "apply", op.phase, op.describe(), sql=tuple(statements), action=run, **kw
        )
    ]


# -- DDL ----------------------------------------------------------------------


def _create_table(at: _Op, op: CreateTable) -> list[Ordered]:
    spec = op.spec
    return _ddl(at, op, [spec.create, *(ix.sql() for ix in spec.indexes), *spec.after])


def _drop_table(at: _Op, op: DropTable) -> list[Ordered]:
    guard = "IF EXISTS " if op.if_exists else ""
    return _ddl(at, op, [f"DROP TABLE {guard}{quote(op.table)}"], estimate=at.count(op.table))


def _rename_table(at: _Op, op: RenameTable) -> list[Ordered]:
    sql = f"ALTER TABLE {quote(op.table)} RENAME TO {quote(op.to)}"
    if not op.if_exists:
        return _ddl(at, op, [sql])

    def run(ctx: StepContext) -> StepResult:
        present = ctx.conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (op.table,)
        ).fetchone()
        if present is not None:
            ctx.conn.execute(sql)
        return StepResult(details={"renamed": present is not None})

    return [at.step(AtomicStep, "apply", op.phase, op.describe(), sql=(sql,), action=run)]


def _add_search(at: _Op, op: AddSearch) -> list[Ordered]:
    return _ddl(at, op, [*op.spec.after, *op.spec.fill], estimate=at.count(op.spec.name))


def _add_column(at: _Op, op: AddColumn) -> list[Ordered]:
    text = op.definition.upper()
    if "PRIMARY KEY" in text or "UNIQUE" in text:
        raise UsageError(f"{op.describe()}: SQLite cannot add such a column; use RebuildTable")
    if "NOT NULL" in text and "DEFAULT" not in text:
        raise UsageError(f"{op.describe()}: a NOT NULL column needs a DEFAULT for existing rows")
    sql = f"ALTER TABLE {quote(op.table)} ADD COLUMN {quote(op.column)} {op.definition}"
    return _ddl(at, op, [sql])


def _drop_column(at: _Op, op: DropColumn) -> list[Ordered]:
    return _ddl(at, op, [f"ALTER TABLE {quote(op.table)} DROP COLUMN {quote(op.column)}"])


def _rename_column(at: _Op, op: RenameColumn) -> list[Ordered]:
    sql = f"ALTER TABLE {quote(op.table)} RENAME COLUMN {quote(op.column)} TO {quote(op.to)}"
    return _ddl(at, op, [sql])


def _add_index(at: _Op, op: AddIndex) -> list[Ordered]:
    return _ddl(at, op, [op.index.sql()], estimate=at.count(op.index.table))


def _drop_index(at: _Op, op: DropIndex) -> list[Ordered]:
    return _ddl(at, op, [f"DROP INDEX {quote(op.name)}"])


def _set_meta(at: _Op, op: SetMeta) -> list[Ordered]:
    def run(ctx: StepContext) -> StepResult:
        value = op.value
        if isinstance(value, Generated):
            found = ctx.conn.execute("SELECT value FROM duru_meta WHERE key = ?", (op.key,))
            if found.fetchone() is not None:
                return StepResult(details={"kept": op.key})
            value = new_id()
        ctx.db.set_meta(op.key, value)
        return StepResult(details={"set": op.key})

    sql = "INSERT INTO duru_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE ..."
    return [at.step(AtomicStep, "apply", op.phase, op.describe(), sql=(sql,), action=run)]


def _raw_sql(at: _Op, op: RawSQL) -> list[Ordered]:
    from duru.migrate.lint import lint_source  # the linter is heavy: load it when used

    report = lint_source(op.sql, Path(f"{at.key('apply')}.sql"), dialect="sqlite")
    report.raise_for_errors()
    statements = split_statements(op.sql)
    for stmt in statements:
        first = stmt.split(None, 1)[0].upper() if stmt.strip() else ""
        if first in _NOT_IN_A_MIGRATION or stmt.upper().startswith("PRAGMA FOREIGN_KEYS"):
            raise UsageError(
                f"{op.describe()}: {first} cannot run inside a migration step (the engine"
                " owns transactions and foreign key enforcement)"
            )
    return _ddl(at, op, statements)


def split_statements(sql: str) -> list[str]:
    """Split SQL text into complete statements (semicolons inside strings or triggers stay)."""
    out, start = [], 0
    for i, ch in enumerate(sql):
        if ch == ";" and sqlite3.complete_statement(sql[start : i + 1]):
            stmt = sql[start : i + 1].strip()
            if stmt.rstrip(";").strip():
                out.append(stmt.rstrip(";").strip())
            start = i + 1
    tail = sql[start:].strip()
    if tail:
        out.append(tail)
    return out


# -- rebuilds -----------------------------------------------------------------


def _rebuild(at: _Op, op: RebuildTable) -> list[Ordered]:
    return _rebuild_steps(at, op, op.spec, op.select, op.rejects_are_failures, op.describe())


def _change_type(at: _Op, op: ChangeType) -> list[Ordered]:
    spec = _need_spec(op, op.spec)
    return _rebuild_steps(at, op, spec, {op.column: op.up}, op.rejects_are_failures, op.describe())


def _add_fk(at: _Op, op: AddForeignKey) -> list[Ordered]:
    spec = _need_spec(op, op.spec)
    return _rebuild_steps(at, op, spec, {}, op.rejects_are_failures, op.describe())


def _drop_fk(at: _Op, op: DropForeignKey) -> list[Ordered]:
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
    at: _Op,
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
            AtomicStep,
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
            AtomicStep,
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


def _transform(at: _Op, op: TransformData) -> list[Ordered]:
    copier = _TransformCopy(op)
    rows = at.count(op.source)

    def bridge(ctx: StepContext) -> StepResult:
        return copier.transform(ctx).bridge(ctx, f"run {ctx.run_id}")

    read = f"SELECT rowid, <columns of {op.source} by name> FROM {quote(op.source)}"
    return [
        at.step(
            AtomicStep,
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


def _stream(at: _Op, op: StreamData) -> list[Ordered]:
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
            AtomicStep,
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


# -- the version stamp -----------------------------------------------------------


def _stamp(m: Migration) -> Step:
    def run(ctx: StepContext) -> StepResult:
        ctx.db.set_meta("schema_version", m.target)
        if m.fingerprint is not None:
            ctx.db.set_meta("model_fingerprint", m.fingerprint)
        return StepResult(details={"schema_version": m.target, "fingerprint": m.fingerprint})

    sql = f"UPDATE duru_meta: schema_version = {m.target!r}"
    if m.fingerprint is not None:
        sql += f", model_fingerprint = {m.fingerprint!r}"
    return AtomicStep(
        f"{m.id}/stamp",
        m.id,
        Phase.MIGRATE,
        f"stamp schema version {m.target}",
        sql=(sql,),
        action=run,
    )


def _h(fn: Callable[[_Op, OpT], list[Ordered]]) -> Callable[[_Op, Any], list[Ordered]]:
    return fn


_HANDLERS: dict[type[Operation], Callable[[_Op, Any], list[Ordered]]] = {
    CreateTable: _h(_create_table),
    DropTable: _h(_drop_table),
    RenameTable: _h(_rename_table),
    AddColumn: _h(_add_column),
    DropColumn: _h(_drop_column),
    RenameColumn: _h(_rename_column),
    AddIndex: _h(_add_index),
    DropIndex: _h(_drop_index),
    SetMeta: _h(_set_meta),
    RawSQL: _h(_raw_sql),
    RebuildTable: _h(_rebuild),
    ChangeType: _h(_change_type),
    AddForeignKey: _h(_add_fk),
    DropForeignKey: _h(_drop_fk),
    TransformData: _h(_transform),
    StreamData: _h(_stream),
    AddSearch: _h(_add_search),
}
