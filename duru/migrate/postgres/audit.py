"""The audit trail on the server: its table, and the PostgreSQL side of :class:`Audit`.

The rows and their meaning are the core's (:mod:`duru.migrate.audit`), in a
PostgreSQL table. Failed DDL attempts get a row each (``details.attempt``,
``details.sqlstate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from duru.migrate.audit import AUDIT_TABLE, COLUMNS, Audit, AuditRow, Where, row_from
from duru.model import now_ms

__all__ = ["AUDIT_DDL", "PgAudit", "Where", "ensure_table", "read", "rows_of", "table_exists"]

AUDIT_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    migration text NOT NULL,
    phase text NOT NULL,
    step text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('step', 'chunk', 'event')),
    started_at bigint NOT NULL,
    ended_at bigint,
    rows bigint NOT NULL DEFAULT 0,
    status text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
    error text,
    details jsonb NOT NULL DEFAULT '{{}}'
)""",
    f"CREATE INDEX IF NOT EXISTS ix_{AUDIT_TABLE}_run_id ON {AUDIT_TABLE} (run_id, id)",
)


class PgAudit(Audit):
    """Writes one run's audit rows on the server (in the caller's transaction)."""

    def __init__(self, conn: Connection[Any], run_id: str) -> None:
        super().__init__(run_id)
        self.conn = conn

    def _insert(self, values: tuple[Any, ...], details: Mapping[str, Any]) -> int:
        found = self.conn.execute(
            f"INSERT INTO {AUDIT_TABLE} (run_id, migration, phase, step, kind, started_at,"
            " ended_at, rows, status, error, details)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (*values, Jsonb(dict(details))),
        ).fetchone()
        assert found is not None  # RETURNING always yields the row
        return int(found[0])

    def _end(
        self, audit_id: int, values: tuple[int, str, str | None], details: Mapping[str, Any]
    ) -> None:
        self.conn.execute(
            f"UPDATE {AUDIT_TABLE} SET ended_at = %s, rows = %s, status = %s, error = %s,"
            " details = details || %s WHERE id = %s",
            (now_ms(), *values, Jsonb(dict(details)), audit_id),
        )

    def read(self, audit_id: int) -> AuditRow:
        return read(self.conn, audit_id)


def ensure_table(conn: Connection[Any]) -> None:
    for stmt in AUDIT_DDL:
        conn.execute(stmt)


def read(conn: Connection[Any], audit_id: int) -> AuditRow:
    found = conn.execute(
        f"SELECT {COLUMNS} FROM {AUDIT_TABLE} WHERE id = %s", (audit_id,)
    ).fetchone()
    if found is None:
        raise KeyError(f"no audit row {audit_id}")
    return _row(found)


def rows_of(conn: Connection[Any], run_id: str | None = None) -> list[AuditRow]:
    """Audit rows, oldest first; of one run when ``run_id`` is given."""
    if not table_exists(conn, AUDIT_TABLE):
        return []
    if run_id is None:
        cur = conn.execute(f"SELECT {COLUMNS} FROM {AUDIT_TABLE} ORDER BY id")
    else:
        cur = conn.execute(
            f"SELECT {COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = %s ORDER BY id", (run_id,)
        )
    return [_row(r) for r in cur.fetchall()]


def table_exists(conn: Connection[Any], name: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(found and found[0])


def _row(r: tuple[Any, ...]) -> AuditRow:
    return row_from(r, r[11])
