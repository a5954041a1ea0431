"""Rewriting a table whose secret plaintext column was dropped, so the plaintext leaves its files.

``ALTER TABLE ... DROP COLUMN`` only marks the column dropped: every row
keeps its bytes in the table's heap (and TOAST) files, and VACUUM does not
remove them (it never touches live rows, and the space it frees keeps the old
bytes until reused). Only a rewrite writes each live row again with dropped
columns as NULL: ``VACUUM FULL`` copies the heap, its TOAST table and every
index into new files, and at commit PostgreSQL truncates the old files to
zero bytes (and deletes them at the next checkpoint).

The rewrite holds an ACCESS EXCLUSIVE lock on the table for its whole length:
reads and writes of the table wait. So it runs under the DDL policy like any
DDL: it gives up its lock wait after ``lock_timeout`` and retries with backoff,
and ``statement_timeout`` bounds how long it may hold the table. It is safe
to run again at any moment: a killed or timed-out rewrite rolls back to the
old files, a committed one is just done twice.

The planner statistics of the dropped column and of the run's snapshot
(most common values and histograms: plaintext) are deleted from
``pg_statistic`` with them, but their bytes stay in that catalog's files
until it is rewritten too: the run's last steps do so, once the snapshots are
dropped, when its role may (a superuser, or MAINTAIN on PostgreSQL 17+), and
say so in their details otherwise. VACUUM without the right only warns and
skips, so every rewrite is checked by the table's files having changed.

What a rewrite cannot reach: WAL written before it (in ``pg_wal`` until
recycled, and in any WAL archive), base backups, replicas' own WAL and
backups, and the run's snapshot when it is kept (``keep_snapshots``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import Connection

from duru.errors import ValidationFailed
from duru.migrate.ops import Phase, quote
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.builders import At, Ordered
from duru.migrate.postgres.steps import PgContext
from duru.migrate.steps import StepResult

# What the plan assumes a rewrite copies per second (heap, TOAST and indexes): a
# cautious figure for a busy server with ordinary disks; the audit records the real one.
REWRITE_RATE = 20 * 1024 * 1024

LEFT_BEHIND = (
    "earlier WAL (pg_wal until recycled, and any WAL archive), base backups and replicas"
    " still hold the old plaintext: rotate or expire them as your retention allows"
)


def rewrite_sql(table: str) -> str:
    """The statement that rewrites ``table`` (heap, TOAST, indexes) into new files."""
    return f"VACUUM (FULL) {quote(table)}"


def rewrite_step(at: At, sub: int, table: str, column: str, phase: Phase) -> Ordered:
    """An outside step that rewrites ``table`` once ``column`` is dropped; no undo needed.

    Its title states the lock and an estimate of how long it is held, from
    the table's size now (a seal backfill about doubles it before the rewrite).
    """
    size = at.size(table)
    where = Where(at.migration.id, phase.label, at.key("rewrite"))

    def rewrite(ctx: PgContext) -> StepResult:
        return StepResult(details=rewrite_table(ctx, where, table))

    return at.step(
        sub,
        "rewrite",
        phase,
        f"rewrite {table} so the dropped {column} leaves its data files (VACUUM FULL):"
        f" ACCESS EXCLUSIVE lock on {table}, reads and writes wait {_duration(size)},"
        " bounded by statement_timeout",
        kind="outside",
        sql=(rewrite_sql(table),),
        action=rewrite,
        notice=f"{table}.{column} was rewritten out of the table's data files; {LEFT_BEHIND}",
    )


def rewrite_table(ctx: PgContext, where: Where, table: str) -> Mapping[str, Any]:
    """VACUUM FULL ``table`` under the DDL policy; what it did, for the audit.

    Raises ValidationFailed when the table still has the files it had before
    (the rewrite did not happen), MigrationError when every lock wait timed out.
    """
    before = _files(ctx.conn, table)
    attempts = ctx.ddl.outside(
        where, rewrite_sql(table), statement_timeout=ctx.config.ddl.statement_timeout
    )
    after = _files(ctx.conn, table)
    if set(after["files"]) & set(before["files"]):
        raise ValidationFailed(
            f"{table} still has its old data files after VACUUM FULL (does this role own it?)"
        )
    return {"attempts": attempts, "bytes_before": before["bytes"], "bytes_after": after["bytes"]}


STATISTICS = "pg_statistic"  # pg_catalog comes first on every search_path
NO_STATISTICS = (
    "this role may not rewrite pg_statistic (needs superuser, or MAINTAIN on PostgreSQL 17+):"
    " old planner statistics of the dropped columns may remain in its files until a superuser"
    " runs VACUUM FULL pg_catalog.pg_statistic"
)


def rewrite_statistics(ctx: PgContext, where: Where) -> Mapping[str, Any]:
    """Rewrite ``pg_statistic`` when this role may; what happened, for the audit.

    Its ACCESS EXCLUSIVE lock makes planning wait for the (short) rewrite of a
    small catalog; it runs under the DDL policy like :func:`rewrite_table`.
    """
    if not _may_rewrite_catalog(ctx.conn):
        return {"statistics": "not rewritten", "why": NO_STATISTICS}
    return {"statistics": "rewritten", **rewrite_table(ctx, where, STATISTICS)}


def _may_rewrite_catalog(conn: Connection[Any]) -> bool:
    with conn.transaction():
        found = conn.execute(
            # CASE: the MAINTAIN privilege is unknown before 17, so test it only from there.
            "SELECT rolsuper OR CASE WHEN current_setting('server_version_num')::int >= 170000"
            " THEN has_table_privilege('pg_catalog.pg_statistic', 'MAINTAIN') ELSE false END"
            " FROM pg_roles WHERE rolname = current_user",
        ).fetchone()
    return bool(found and found[0])


def _files(conn: Connection[Any], table: str) -> dict[str, Any]:
    """The data files of ``table`` and its TOAST table (paths under the data directory), bytes."""
    with conn.transaction():
        found = conn.execute(
            "SELECT pg_relation_filepath(c.oid), pg_relation_filepath(NULLIF(c.reltoastrelid, 0)),"
            " pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = %s::regclass",
            (quote(table),),
        ).fetchone()
    assert found is not None  # ::regclass raised for a missing table
    heap, toast, size = found
    return {"files": [f for f in (heap, toast) if f], "bytes": int(size)}


def _duration(size: int | None) -> str:
    if size is None:
        return "for the rewrite"
    seconds = size / REWRITE_RATE
    shown = "under a second" if seconds < 1 else f"about {seconds:,.0f}s"
    return f"~{size / 1024 / 1024:,.1f} MB now: {shown} at {REWRITE_RATE // 1024 // 1024} MB/s"
