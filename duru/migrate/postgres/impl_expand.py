"""Steps of expand/contract operations: renames, type changes, and sealing plaintext.

Expand (phase bridge) adds the new column and its sync trigger in one short
transaction; the backfill (phase migrate) runs in chunks; contract (phase
cleanup) snapshots what it drops, then drops the trigger and the old column.
Sealing adds, per user whose keys the run holds, a client-side backfill and
a check that opens every ciphertext; its contract first refuses new
plaintext (a NOT VALID check), seals what is left, validates, sets NOT NULL,
snapshots and drops the plaintext column, and rewrites the table so the
plaintext leaves its data files (:mod:`rewrite`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from duru.errors import NotFound, RollbackFailed
from duru.migrate.ops import Phase, quote
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.builders import (
    At,
    Ordered,
    ddl,
    keyed_contract_steps,
    per_user_steps,
    snapshot_label,
    snapshot_step,
)
from duru.migrate.postgres.expand_contract import (
    CONTRACT_REASON,
    ExpandBackfill,
    contract_sql,
    convert,
    drop_sync_sql,
    expand_sql,
    sync_trigger_sql,
)
from duru.migrate.postgres.ops import (
    ContractColumn,
    DropPlaintext,
    ExpandColumn,
    SealColumn,
    SealTarget,
    seal_target,
)
from duru.migrate.postgres.rewrite import rewrite_step
from duru.migrate.postgres.seal import (
    Reseal,
    SealBackfill,
    SealValidation,
    seal_sync_sql,
    unsealed_by_user,
)
from duru.migrate.postgres.seal import expand_sql as seal_expand_sql
from duru.migrate.postgres.snapshot import (
    primary_key,
    read_snapshot,
    restore_snapshot,
    snapshot_name,
)
from duru.migrate.postgres.steps import Action, PgContext, Undo
from duru.migrate.steps import StepResult


def expand_column(at: At, op: ExpandColumn) -> list[Ordered]:
    table, new = quote(op.table), quote(op.new_column)
    undo = [*drop_sync_sql(op.table, op.column), f"ALTER TABLE {table} DROP COLUMN IF EXISTS {new}"]
    backfill = ExpandBackfill(op)
    key = _key_or_placeholder(at, op.table)
    return [
        ddl(at, 0, "expand", op.phase, op.describe(), expand_sql(op), undo=undo),
        at.step(
            1,
            "backfill",
            Phase.MIGRATE,
            f"backfill {op.table}.{op.new_column} from {op.column}, in chunks",
            kind="chunked",
            sql=backfill.sql(key),
            work=backfill,
            estimate=at.estimate(op.table),
        ),
    ]


def contract_column(at: At, op: ContractColumn) -> list[Ordered]:
    e = op.expansion
    if op.keep == "old":
        redo = [
            *expand_sql(e),
            f"UPDATE {quote(e.table)} SET {quote(e.new_column)} = {convert(e.up, quote(e.column))}",
        ]
        return [ddl(at, 0, "contract", op.phase, op.describe(), contract_sql(op), undo=redo)]
    fill = (
        f"UPDATE {quote(e.table)} SET {quote(e.column)} = {convert(e.down, quote(e.new_column))}"
        f" WHERE {quote(e.column)} IS NULL AND {quote(e.new_column)} IS NOT NULL",
    )
    return [
        snapshot_step(at, 0, e.table, (e.column,), op.phase),
        ddl(
            at,
            1,
            "contract",
            op.phase,
            op.describe(),
            contract_sql(op),
            undo=restore_undo(
                snapshot_label(at, e.table), fill=fill, then=tuple(sync_trigger_sql(e))
            ),
            undo_sql=(f"-- restore {e.table}.{e.column} from the run's snapshot", *fill),
        ),
    ]


def restore_undo(label: str, *, fill: tuple[str, ...] = (), then: tuple[str, ...] = ()) -> Undo:
    """Undo a drop: put the columns back from the run's snapshot ``label``, then run ``then``."""

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        def body(attempt: int) -> None:
            snap = read_snapshot(ctx.conn, snapshot_name(ctx.run_id, label))
            restore_snapshot(ctx.conn, snap, fill=fill)
            for stmt in then:
                ctx.conn.execute(stmt)

        ctx.ddl.run(where, body, statement_timeout=ctx.config.ddl.scan_timeout)

    return undo


def _key_or_placeholder(at: At, table: str) -> tuple[str, ...]:
    """The table's key, for showing the backfill's SQL; ("id",) if the table is not there yet."""
    try:
        with at.conn.transaction():
            return primary_key(at.conn, table)
    except (psycopg.Error, NotFound):  # made by an earlier operation of this run
        return ("id",)


# -- sealing ---------------------------------------------------------------------------


def seal_column(at: At, op: SealColumn) -> list[Ordered]:
    t = seal_target(op.table, op.field)
    steps = [
        at.step(
            0,
            "expand",
            op.phase,
            op.describe() + ": add the sealed column and the sync trigger",
            kind="transaction",
            sql=tuple(seal_expand_sql(t)),
            action=_seal_expand(t),
            undo=_unseal(t),
            undo_sql=(*drop_sync_sql(t.table, t.plain), _drop(t.table, t.sealed)),
        )
    ]
    steps += per_user_steps(
        at,
        Phase.MIGRATE,
        lambda user: [
            (
                f"seal[{user}]",
                f"seal {t.table}.{t.plain} of user {user} on this client, in chunks",
                SealBackfill(t, user),
            ),
            (
                f"verify[{user}]",
                f"open every {t.sealed} of user {user} and compare with {t.plain}",
                SealValidation(t, user),
            ),
        ],
    )
    return steps


def _seal_expand(t: SealTarget) -> Action:
    def expand(ctx: PgContext) -> StepResult:
        was = ctx.conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
            (quote(t.table), t.plain),
        ).fetchone()
        for stmt in seal_expand_sql(t):
            ctx.conn.execute(stmt)
        return StepResult(details={"plain_was_not_null": bool(was and was[0])})

    return expand


def _unseal(t: SealTarget) -> Undo:
    """Undo the expand: refuse when rows exist only sealed (new clients wrote them)."""

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        def body(attempt: int) -> None:
            only = ctx.conn.execute(
                f"SELECT count(*) FROM {quote(t.table)} WHERE {quote(t.plain)} IS NULL"
                f" AND {quote(t.sealed)} IS NOT NULL"
            ).fetchone()
            if only and only[0]:
                raise RollbackFailed(
                    f"{only[0]} rows of {t.table} exist only in {t.sealed} (written by clients of"
                    f" the new release); dropping {t.sealed} would lose them. Run the migration"
                    " forward instead"
                )
            for stmt in (*drop_sync_sql(t.table, t.plain), _drop(t.table, t.sealed)):
                ctx.conn.execute(stmt)
            if details.get("plain_was_not_null"):
                ctx.conn.execute(
                    f"ALTER TABLE {quote(t.table)} ALTER COLUMN {quote(t.plain)} SET NOT NULL"
                )

        ctx.ddl.run(where, body, statement_timeout=ctx.config.ddl.scan_timeout)

    return undo


def drop_plaintext(at: At, op: DropPlaintext) -> list[Ordered]:
    t = seal_target(op.table, op.field)
    table, plain = quote(t.table), quote(t.plain)
    drop = f"{CONTRACT_REASON}ALTER TABLE {table} DROP COLUMN {plain}"
    return [
        *keyed_contract_steps(
            at,
            t.table,
            t.sealed,
            op.phase,
            missing="are still plaintext",
            waiting=lambda conn: unsealed_by_user(conn, t),
            fill=Reseal(t),
            fill_title="seal rows written as plaintext since they were checked",
            slug="reseal",
        ),
        snapshot_step(at, 5, t.table, (t.plain,), op.phase),
        ddl(
            at,
            6,
            "drop-plaintext",
            op.phase,
            op.describe(),
            [*drop_sync_sql(t.table, t.plain), drop],
            undo=restore_undo(snapshot_label(at, t.table), then=tuple(seal_sync_sql(t))),
            undo_sql=(f"-- restore {t.table}.{t.plain} from the run's snapshot", *seal_sync_sql(t)),
        ),
        # The dropped plaintext is still in every row's bytes until the table is rewritten.
        rewrite_step(at, 7, t.table, t.plain, op.phase),
    ]


def _drop(table: str, column: str) -> str:
    return f"ALTER TABLE {quote(table)} DROP COLUMN IF EXISTS {quote(column)}"
