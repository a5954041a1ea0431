"""How each operation runs on SQLite: the steps it becomes and the SQL they execute.

Simple DDL (create, rename, add column, index, meta, raw SQL) is one transaction
step. Operations that copy rows (table rebuilds, transforms, streams) are in
:mod:`duru.migrate.sqlite.impl_copy`. Each migration ends its migrate phase
with a ``stamp`` step that writes the new schema version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from duru.errors import UsageError
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
    TransformData,
    quote,
)
from duru.migrate.sqlite.builders import At, Ordered, ddl
from duru.migrate.sqlite.impl_copy import (
    add_foreign_key,
    change_type,
    drop_foreign_key,
    rebuild_table,
    stream_data,
    transform_data,
)
from duru.migrate.sqlite.steps import Step, StepContext, TransactionStep
from duru.migrate.steps import StepResult
from duru.model import new_id

OpT = TypeVar("OpT", bound=Operation)

_NOT_IN_A_MIGRATION = ("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "VACUUM")


def migration_steps(conn: sqlite3.Connection, m: Migration) -> list[Step]:
    """Every step of migration ``m``, in run order (phase, then operation).

    Raises UsageError for an operation SQLite cannot run, and for a rebuild
    or transform of a table that an earlier operation alters in the migrate
    phase: its bridge runs first (bridge phase) and would see the table
    before that change. Such a change belongs in a migration of its own.
    The linter judges the operations first
    (:func:`~duru.migrate.lint.operations.check_migration`): UsageError for
    one its rules reject, LintFailed for raw SQL they reject.
    """
    from duru.migrate.lint.operations import check_migration  # the linter loads on use

    _check_order(m)
    check_migration(m, "sqlite")
    out: list[Ordered] = []
    for i, op in enumerate(m.ops):
        handler = _HANDLERS.get(type(op))
        if handler is None:
            raise UsageError(f"SQLite cannot run {type(op).__name__} operations")
        out += handler(At(conn, m, i), op)
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


# -- DDL ----------------------------------------------------------------------


def _create_table(at: At, op: CreateTable) -> list[Ordered]:
    spec = op.spec
    return ddl(at, op, [spec.create, *(ix.sql() for ix in spec.indexes), *spec.after])


def _drop_table(at: At, op: DropTable) -> list[Ordered]:
    guard = "IF EXISTS " if op.if_exists else ""
    return ddl(at, op, [f"DROP TABLE {guard}{quote(op.table)}"], estimate=at.count(op.table))


def _rename_table(at: At, op: RenameTable) -> list[Ordered]:
    sql = f"ALTER TABLE {quote(op.table)} RENAME TO {quote(op.to)}"
    if not op.if_exists:
        return ddl(at, op, [sql])

    def run(ctx: StepContext) -> StepResult:
        present = ctx.conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (op.table,)
        ).fetchone()
        if present is not None:
            ctx.conn.execute(sql)
        return StepResult(details={"renamed": present is not None})

    return [at.step(TransactionStep, "apply", op.phase, op.describe(), sql=(sql,), action=run)]


def _add_search(at: At, op: AddSearch) -> list[Ordered]:
    return ddl(at, op, [*op.spec.after, *op.spec.fill], estimate=at.count(op.spec.name))


def _add_column(at: At, op: AddColumn) -> list[Ordered]:
    text = op.definition.upper()
    if "PRIMARY KEY" in text or "UNIQUE" in text:
        raise UsageError(f"{op.describe()}: SQLite cannot add such a column; use RebuildTable")
    sql = f"ALTER TABLE {quote(op.table)} ADD COLUMN {quote(op.column)} {op.definition}"
    return ddl(at, op, [sql])


def _drop_column(at: At, op: DropColumn) -> list[Ordered]:
    return ddl(at, op, [f"ALTER TABLE {quote(op.table)} DROP COLUMN {quote(op.column)}"])


def _rename_column(at: At, op: RenameColumn) -> list[Ordered]:
    sql = f"ALTER TABLE {quote(op.table)} RENAME COLUMN {quote(op.column)} TO {quote(op.to)}"
    return ddl(at, op, [sql])


def _add_index(at: At, op: AddIndex) -> list[Ordered]:
    return ddl(at, op, [op.index.sql()], estimate=at.count(op.index.table))


def _drop_index(at: At, op: DropIndex) -> list[Ordered]:
    return ddl(at, op, [f"DROP INDEX {quote(op.name)}"])


def _set_meta(at: At, op: SetMeta) -> list[Ordered]:
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
    return [at.step(TransactionStep, "apply", op.phase, op.describe(), sql=(sql,), action=run)]


def _raw_sql(at: At, op: RawSQL) -> list[Ordered]:
    statements = split_statements(op.sql)
    for stmt in statements:
        first = stmt.split(None, 1)[0].upper() if stmt.strip() else ""
        if first in _NOT_IN_A_MIGRATION or stmt.upper().startswith("PRAGMA FOREIGN_KEYS"):
            raise UsageError(
                f"{op.describe()}: {first} cannot run inside a migration step (the engine"
                " owns transactions and foreign key enforcement)"
            )
    return ddl(at, op, statements)


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
    return TransactionStep(
        f"{m.id}/stamp",
        m.id,
        Phase.MIGRATE,
        f"stamp schema version {m.target}",
        sql=(sql,),
        action=run,
    )


def _h(fn: Callable[[At, OpT], list[Ordered]]) -> Callable[[At, Any], list[Ordered]]:
    return fn


_HANDLERS: dict[type[Operation], Callable[[At, Any], list[Ordered]]] = {
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
    RebuildTable: _h(rebuild_table),
    ChangeType: _h(change_type),
    AddForeignKey: _h(add_foreign_key),
    DropForeignKey: _h(drop_foreign_key),
    TransformData: _h(transform_data),
    StreamData: _h(stream_data),
    AddSearch: _h(_add_search),
}
