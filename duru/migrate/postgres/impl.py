"""How each operation runs on PostgreSQL: the steps it becomes and the SQL they execute.

Every transactional step runs under ``lock_timeout`` / ``statement_timeout``
with retries (:mod:`safe_ddl`). Indexes are built and dropped CONCURRENTLY
outside transactions (:mod:`indexes`); constraints are added NOT VALID and
validated in a separate step; NOT NULL goes through a validated CHECK; a
dropped column is snapshotted first. Renames, type changes and sealing are
expand/contract (:mod:`impl_expand`). Each migration ends with a ``stamp``
step that records the new version in ``duru_meta``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from psycopg import Connection

from duru.errors import UsageError
from duru.migrate.migration import Migration
from duru.migrate.ops import (
    AddColumn,
    AddIndex,
    DropColumn,
    DropIndex,
    Operation,
    Phase,
    RawSQL,
    quote,
)
from duru.migrate.postgres import impl_expand, row_macs
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.builders import (
    At,
    Ordered,
    add_constraint_steps,
    ddl,
    set_not_null_steps,
    snapshot_label,
    snapshot_step,
)
from duru.migrate.postgres.indexes import build_index, create_sql, drop_index, drop_sql
from duru.migrate.postgres.ops import (
    AddConstraint,
    ContractColumn,
    CreateServerTable,
    DropConstraint,
    DropNotNull,
    DropPlaintext,
    DropServerTable,
    ExpandColumn,
    SealColumn,
    SetNotNull,
    layout_table,
)
from duru.migrate.postgres.row_macs import AddRowMacs, CheckBeforeMacs, RequireRowMacs
from duru.migrate.postgres.steps import PgContext, PgStep
from duru.migrate.steps import StepResult
from duru.remote.layout import META
from duru.remote.schema import SERVER_SCHEMA_VERSION, expected_meta, read_meta, table_ddl

OpT = TypeVar("OpT", bound=Operation)
Handler = Callable[[At, Any], list[Ordered]]


def migration_steps(conn: Connection[Any], m: Migration, users: tuple[str, ...]) -> list[PgStep]:
    """Every step of migration ``m``, in run order (phase, then operation, then sub-step).

    ``users``: whose keys the run holds. Raises UsageError for an operation
    PostgreSQL cannot run or the linter's operation rules reject, LintFailed
    for RawSQL the linter rejects (:mod:`duru.migrate.lint.operations`).
    """
    from duru.migrate.lint.operations import check_migration  # the linter loads on use

    check_migration(m, "postgres")
    out: list[Ordered] = []
    for i, op in enumerate(m.ops):
        handler = _HANDLERS.get(type(op))
        if handler is None:
            raise UsageError(f"{op.describe()}: {_unknown(op)}")
        out += handler(At(conn, m, i, users), op)
    out.append(_stamp(At(conn, m, len(m.ops), users), m))
    return [s for _, s in sorted(out, key=lambda pair: pair[0])]


def _unknown(op: Operation) -> str:
    return f"the server cannot run {type(op).__name__} operations"


# -- columns ------------------------------------------------------------------------


def _add_column(at: At, op: AddColumn) -> list[Ordered]:
    table = quote(op.table)
    add = f"ALTER TABLE {table} ADD COLUMN {quote(op.column)} {op.definition}"
    undo = [f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(op.column)}"]
    return [ddl(at, 0, "apply", op.phase, op.describe(), [add], undo=undo)]


def _drop_column(at: At, op: DropColumn) -> list[Ordered]:
    drop = f"ALTER TABLE {quote(op.table)} DROP COLUMN {quote(op.column)}"
    return [
        snapshot_step(at, 0, op.table, (op.column,), op.phase),
        ddl(
            at,
            1,
            "apply",
            op.phase,
            op.describe(),
            [drop],
            undo=impl_expand.restore_undo(snapshot_label(at, op.table)),
            undo_sql=(f"-- restore {op.table}.{op.column} from the run's snapshot",),
        ),
    ]


# -- the server's own tables -----------------------------------------------------------


def _create_server_table(at: At, op: CreateServerTable) -> list[Ordered]:
    create = table_ddl(layout_table(op.table))
    undo = [f"DROP TABLE IF EXISTS {quote(op.table)}"]
    return [ddl(at, 0, "create", op.phase, op.describe(), create, undo=undo)]


def _drop_server_table(at: At, op: DropServerTable) -> list[Ordered]:
    drop = f"DROP TABLE IF EXISTS {quote(op.table)}"
    return [
        ddl(at, 0, "drop", op.phase, op.describe(), [drop], undo=table_ddl(layout_table(op.table)))
    ]


# -- indexes ------------------------------------------------------------------------


def _add_index(at: At, op: AddIndex) -> list[Ordered]:
    spec = op.index

    def build(ctx: PgContext) -> StepResult:
        where = Where(at.migration.id, op.phase.label, at.key("build"))
        done = build_index(ctx.ddl, where, spec)
        details = {
            "attempts": done.attempts,
            "invalid_leftovers_dropped": done.leftovers_dropped,
            "already_valid": done.already_valid,
        }
        return StepResult(details=details)

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        drop_index(ctx.ddl, where, spec.name)

    return [
        at.step(
            0,
            "build",
            op.phase,
            op.describe() + " (concurrently, outside a transaction)",
            kind="outside",
            sql=(create_sql(spec),),
            action=build,
            undo=undo,
            undo_sql=(drop_sql(spec.name),),
            estimate=at.estimate(spec.table),
        )
    ]


def _drop_index(at: At, op: DropIndex) -> list[Ordered]:
    def drop(ctx: PgContext) -> StepResult:
        where = Where(at.migration.id, op.phase.label, at.key("drop"))
        return StepResult(details={"attempts": drop_index(ctx.ddl, where, op.name)})

    index = op.index

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        assert index is not None
        build_index(ctx.ddl, where, index)

    return [
        at.step(
            0,
            "drop",
            op.phase,
            op.describe() + " (concurrently, outside a transaction)",
            kind="outside",
            sql=(drop_sql(op.name),),
            action=drop,
            undo=None if index is None else undo,
            undo_sql=() if index is None else (create_sql(index),),
        )
    ]


# -- constraints and NOT NULL ----------------------------------------------------------


def _add_constraint(at: At, op: AddConstraint) -> list[Ordered]:
    return add_constraint_steps(at, 0, op.table, op.name, op.definition, op.phase, op.describe())


def _drop_constraint(at: At, op: DropConstraint) -> list[Ordered]:
    t, n = quote(op.table), quote(op.name)
    undo: list[str] = []
    if op.definition is not None:
        undo = [
            f"ALTER TABLE {t} ADD CONSTRAINT {n} {op.definition} NOT VALID",
            f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}",
        ]
    drop = f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {n}"
    return [ddl(at, 0, "apply", op.phase, op.describe(), [drop], undo=undo or None)]


def _set_not_null(at: At, op: SetNotNull) -> list[Ordered]:
    return set_not_null_steps(at, 0, op.table, op.column, op.phase)


def _drop_not_null(at: At, op: DropNotNull) -> list[Ordered]:
    t, c = quote(op.table), quote(op.column)
    return [
        ddl(
            at,
            0,
            "apply",
            op.phase,
            op.describe(),
            [f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL"],
            undo=[f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"],
        )
    ]


# -- raw SQL -------------------------------------------------------------------------


def _raw_sql(at: At, op: RawSQL) -> list[Ordered]:
    undo = None if op.reverse_sql is None else [op.reverse_sql]
    return [ddl(at, 0, "sql", op.phase, op.describe(), [op.sql], undo=undo)]


# -- the version stamp ------------------------------------------------------------------


def _stamp(at: At, m: Migration) -> Ordered:
    values = {"schema_version": m.target}
    if m.target == str(SERVER_SCHEMA_VERSION):
        values = expected_meta()  # this build's layout: its fingerprints too

    def stamp(ctx: PgContext) -> StepResult:
        previous = read_meta(ctx.conn) or {}
        _write_meta(ctx.conn, values)
        return StepResult(details={"previous": {k: previous.get(k) for k in values}})

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        previous = dict(details.get("previous") or {})
        ctx.ddl.run(where, lambda attempt: _write_meta(ctx.conn, previous))

    shown = ", ".join(f"{k} = {v}" for k, v in values.items())
    return at.step(
        0,
        "stamp",
        Phase.CLEANUP,
        f"record server schema version {m.target} in {META}",
        kind="transaction",
        sql=tuple(
            f"INSERT INTO {META} (key, value) VALUES ('{k}', '{v}')"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            for k, v in values.items()
        ),
        action=stamp,
        undo=undo,
        undo_sql=(f"-- restore {META} as it was before ({shown})",),
    )


def _write_meta(conn: Connection[Any], values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            conn.execute(f"DELETE FROM {META} WHERE key = %s", (key,))
        else:
            conn.execute(
                f"INSERT INTO {META} (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


_HANDLERS: dict[type, Handler] = {
    AddColumn: _add_column,
    DropColumn: _drop_column,
    AddIndex: _add_index,
    DropIndex: _drop_index,
    RawSQL: _raw_sql,
    AddConstraint: _add_constraint,
    DropConstraint: _drop_constraint,
    SetNotNull: _set_not_null,
    DropNotNull: _drop_not_null,
    ExpandColumn: impl_expand.expand_column,
    ContractColumn: impl_expand.contract_column,
    SealColumn: impl_expand.seal_column,
    DropPlaintext: impl_expand.drop_plaintext,
    CheckBeforeMacs: row_macs.check_before_macs,
    AddRowMacs: row_macs.add_row_macs,
    RequireRowMacs: row_macs.require_row_macs,
    CreateServerTable: _create_server_table,
    DropServerTable: _drop_server_table,
}
