"""Helpers that turn an operation into ordered server steps (shared by the impl modules)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.migrate.migration import Migration
from duru.migrate.ops import Phase, quote
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.snapshot import snapshot_name, take_snapshot
from duru.migrate.postgres.steps import STEP_TYPES, Action, PgContext, PgStep, StepKind, Undo
from duru.migrate.steps import PauseRun, StepResult
from duru.model import BY_TABLE
from duru.remote.layout import server_table

# (phase, operation index, sub-step): steps run in this order.
Order = tuple[int, int, int]
Ordered = tuple[Order, PgStep]


@dataclass(frozen=True)
class At:
    """Where an operation sits: the connection (for estimates), its migration, its index.

    ``users``: the user ids whose keys the run holds (per-user steps are made for them).
    """

    conn: Connection[Any]
    migration: Migration
    index: int
    users: tuple[str, ...] = ()

    def key(self, slug: str) -> str:
        return f"{self.migration.id}/{self.index:02d}.{slug}"

    def step(
        self, sub: int, slug: str, phase: Phase, title: str, *, kind: StepKind, **kw: Any
    ) -> Ordered:
        """Sub-step ``sub`` of the operation: a ``STEP_TYPES[kind]`` made from ``kw``."""
        order = (int(phase), self.index, sub)
        made = STEP_TYPES[kind](self.key(slug), self.migration.id, phase, title, **kw)
        return order, made

    def estimate(self, table: str) -> int | None:
        """The planner's row estimate for ``table`` (None: unknown, or not there yet)."""
        with self.conn.transaction():
            found = self.conn.execute(
                "SELECT c.reltuples::bigint FROM pg_class c WHERE c.oid = to_regclass(%s)",
                (table,),
            ).fetchone()
        if found is None or found[0] is None or found[0] < 0:
            return None
        return int(found[0])

    def size(self, table: str) -> int | None:
        """Bytes ``table`` takes now with its TOAST and indexes (None: not there yet)."""
        with self.conn.transaction():
            found = self.conn.execute(
                "SELECT pg_total_relation_size(c.oid) FROM pg_class c"
                " WHERE c.oid = to_regclass(%s)",
                (table,),
            ).fetchone()
        return None if found is None or found[0] is None else int(found[0])


def run_statements(statements: Sequence[str], rows: int = 0) -> Action:
    """An action that executes ``statements`` in the step's transaction."""

    def run(ctx: PgContext) -> StepResult:
        for stmt in statements:
            ctx.conn.execute(stmt)
        return StepResult(rows, details={"statements": len(statements)})

    return run


def undo_statements(statements: Sequence[str], *, scan: bool = False) -> Undo:
    """An undo that executes ``statements`` in one transaction under the DDL policy."""

    def undo(ctx: PgContext, where: Where, details: Mapping[str, Any]) -> None:
        def body(attempt: int) -> None:
            for stmt in statements:
                ctx.conn.execute(stmt)

        timeout = ctx.config.ddl.scan_timeout if scan else None
        ctx.ddl.run(where, body, statement_timeout=timeout)

    return undo


def ddl(
    at: At,
    sub: int,
    slug: str,
    phase: Phase,
    title: str,
    statements: Sequence[str],
    *,
    undo: Sequence[str] | Undo | None = None,
    undo_sql: Sequence[str] = (),
    scan: bool = False,
    estimate: int | None = None,
) -> Ordered:
    """A transaction step that executes ``statements``; ``undo`` as statements or a function."""
    fn: Undo | None
    if undo is None or callable(undo):
        fn = undo
    else:
        undo_sql = tuple(undo)
        fn = undo_statements(undo_sql)
    return at.step(
        sub,
        slug,
        phase,
        title,
        kind="transaction",
        sql=tuple(statements),
        action=run_statements(statements),
        undo=fn,
        undo_sql=tuple(undo_sql),
        scan=scan,
        estimate=estimate,
    )


def snapshot_label(at: At, table: str) -> str:
    """What names an operation's snapshot of ``table`` within a run (one per operation)."""
    return f"{table}_{at.migration.id.split('_')[0]}_{at.index:02d}"


def snapshot_step(at: At, sub: int, table: str, columns: tuple[str, ...], phase: Phase) -> Ordered:
    """A verified snapshot of ``columns`` of ``table`` (with its key) before they are dropped."""
    label = snapshot_label(at, table)

    def take(ctx: PgContext) -> StepResult:
        snap = take_snapshot(ctx.conn, snapshot_name(ctx.run_id, label), table, columns)
        return StepResult(snap.rows, details=snap.to_json())

    listed = ", ".join(quote(c) for c in columns)
    return at.step(
        sub,
        "snapshot",
        phase,
        f"snapshot {table} ({', '.join(columns)}) before dropping, verified by count",
        kind="transaction",
        sql=(
            f"CREATE TABLE duru_snapshot_run_{label} AS SELECT {_key_of(table)}, {listed}"
            f" FROM {quote(table)}",
        ),
        action=take,
        scan=True,
        repeatable_read=True,
        estimate=at.estimate(table),
    )


def add_constraint_steps(
    at: At, sub: int, table: str, name: str, definition: str, phase: Phase, title: str
) -> list[Ordered]:
    """ADD CONSTRAINT ... NOT VALID (instant), then VALIDATE (a scan that lets writes through)."""
    t, n = quote(table), quote(name)
    return [
        ddl(
            at,
            sub,
            f"add-{name}",
            phase,
            f"{title} (NOT VALID: only new rows checked)",
            [f"ALTER TABLE {t} ADD CONSTRAINT {n} {definition} NOT VALID"],
            undo=[f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {n}"],
        ),
        ddl(
            at,
            sub + 1,
            f"validate-{name}",
            phase,
            f"validate {name} on existing rows (no write lock)",
            [f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}"],
            scan=True,
            estimate=at.estimate(table),
        ),
    ]


def not_null_check(table: str, column: str) -> str:
    return f"duru_nn_{table}_{column}"[:63]


def set_not_null_steps(at: At, sub: int, table: str, column: str, phase: Phase) -> list[Ordered]:
    """CHECK (col IS NOT NULL) NOT VALID; VALIDATE; SET NOT NULL (proved by the check); drop it."""
    check = not_null_check(table, column)
    t, c, n = quote(table), quote(column), quote(check)
    steps = add_constraint_steps(
        at, sub, table, check, f"CHECK ({c} IS NOT NULL)", phase, f"refuse NULL in {table}.{column}"
    )
    steps.append(
        ddl(
            at,
            sub + 2,
            f"set-not-null-{column}",
            phase,
            f"set {table}.{column} NOT NULL (proved by the valid check, no scan); drop the check",
            [
                f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
                f"ALTER TABLE {t} DROP CONSTRAINT {n}",
            ],
            undo=[f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL"],
        )
    )
    return steps


def _key_of(table: str) -> str:
    """The primary key columns of a model table, for the plan (the run reads the live key)."""
    found = BY_TABLE.get(table)
    if found is None:
        return "ctid"
    return ", ".join(quote(c) for c in server_table(found).primary_key.columns)


def keyed_contract_steps(
    at: At,
    table: str,
    column: str,
    phase: Phase,
    *,
    missing: str,
    waiting: Callable[[Connection[Any]], Mapping[str, int]],
    fill: Any,
    fill_title: str,
    slug: str,
) -> list[Ordered]:
    """Sub-steps 0-4 of a contract making ``column`` NOT NULL where only a user's keys can
    fill it: wait for the keys of every user with rows left (``waiting``: user id -> rows
    without the value), refuse new rows without it (a NOT VALID check), fill what was
    written meanwhile (``fill``, a chunked step), validate the check, SET NOT NULL.

    ``missing`` says what such a row lacks, for messages ("are still plaintext").
    """
    t, check = quote(table), not_null_check(table, column)
    refuse = add_constraint_steps(
        at,
        1,
        table,
        check,
        f"CHECK ({quote(column)} IS NOT NULL)",
        phase,
        f"refuse new rows of {table} that {missing}",
    )
    validate = ((phase, at.index, 3), refuse[1][1])

    def gate(ctx: PgContext) -> StepResult:
        left = {u: n for u, n in waiting(ctx.conn).items() if u not in ctx.keys}
        if left:
            shown = ", ".join(f"{u} ({n})" for u, n in list(left.items())[:5])
            raise PauseRun(
                f"{sum(left.values())} rows of {table} of {len(left)} user(s) {missing} and"
                f" this run has no keys for them: {shown}. Run again with their keys before"
                f" {table}.{column} becomes NOT NULL"
            )
        return StepResult(details={"users_checked": len(ctx.keys)})

    return [
        at.step(
            0,
            "gate",
            phase,
            f"every user with rows of {table} that {missing} has keys in this run",
            kind="transaction",
            sql=(
                f"SELECT user_id, count(*) FROM {t} WHERE {quote(column)} IS NULL GROUP BY user_id",
            ),
            action=gate,
        ),
        refuse[0],
        at.step(2, slug, phase, fill_title, kind="chunked", sql=fill.sql(), work=fill),
        validate,
        ddl(
            at,
            4,
            f"set-not-null-{column}",
            phase,
            f"set {table}.{column} NOT NULL (proved by the valid check); drop the check",
            [
                f"ALTER TABLE {t} ALTER COLUMN {quote(column)} SET NOT NULL",
                f"ALTER TABLE {t} DROP CONSTRAINT {quote(check)}",
            ],
            undo=[f"ALTER TABLE {t} ALTER COLUMN {quote(column)} DROP NOT NULL"],
        ),
    ]


def per_user_steps(
    at: At, phase: Phase, jobs: Callable[[str], Sequence[tuple[str, str, Any]]]
) -> list[Ordered]:
    """Chunked steps per user of the run, from sub-step 1: ``jobs(user)`` lists (slug,
    title, work); every user's first job runs before any user's second, and so on."""
    out: list[Ordered] = []
    users = at.users
    for n, user in enumerate(users):
        for k, (slug, title, work) in enumerate(jobs(user)):
            out.append(
                at.step(
                    1 + k * len(users) + n,
                    slug,
                    phase,
                    title,
                    kind="chunked",
                    sql=work.sql(),
                    work=work,
                )
            )
    return out
