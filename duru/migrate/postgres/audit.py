"""The server's audit trail: the device audit's shape, in a PostgreSQL table.

Same columns and meaning as :mod:`duru.migrate.audit` (run, migration, phase,
step, kind, start and end in epoch ms, rows, status, error, JSON details), in
``duru_migration_audit`` on the server, so one reader shows both sides. Every
call runs in the caller's transaction: a step's row commits with the step.
Failed DDL attempts get a row each (``details.attempt``, ``details.sqlstate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from duru.migrate.audit import AUDIT_TABLE, AuditRow, Kind, Status
from duru.model import now_ms

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

_COLUMNS = (
    "id, run_id, migration, phase, step, kind, started_at, ended_at, rows, status, error, details"
)


@dataclass(frozen=True)
class Where:
    """Which migration, phase and step an audit row is about."""

    migration: str
    phase: str
    step: str


@dataclass
class PgAudit:
    """Writes the audit rows of one run on the server (in the caller's transaction)."""

    conn: Connection[Any]
    run_id: str

    def record(
        self,
        where: Where,
        *,
        started_at: int,
        kind: Kind = "step",
        rows: int = 0,
        status: Status = "ok",
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a row (ended now unless ``running``); its id."""
        ended = None if status == "running" else now_ms()
        found = self.conn.execute(
            f"INSERT INTO {AUDIT_TABLE} (run_id, migration, phase, step, kind, started_at,"
            " ended_at, rows, status, error, details)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                self.run_id,
                where.migration,
                where.phase,
                where.step,
                kind,
                started_at,
                ended,
                rows,
                status,
                error,
                Jsonb(dict(details or {})),
            ),
        ).fetchone()
        assert found is not None
        return int(found[0])

    def open(self, where: Where, details: Mapping[str, Any]) -> int:
        """A ``running`` row for a step that spans transactions; commit it before the work."""
        return self.record(where, started_at=now_ms(), status="running", details=details)

    def close(
        self,
        audit_id: int,
        *,
        rows: int,
        status: Status,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """End a ``running`` row, merging ``details`` into what it already says."""
        self.conn.execute(
            f"UPDATE {AUDIT_TABLE} SET ended_at = %s, rows = %s, status = %s, error = %s,"
            " details = details || %s WHERE id = %s",
            (now_ms(), rows, status, error, Jsonb(dict(details or {})), audit_id),
        )

    def interrupt(self, audit_id: int, resumed_by: int, why: str) -> None:
        """Mark a ``running`` row a dead process left behind as interrupted."""
        row = read(self.conn, audit_id)
        extra = {"interrupted": why, "resumed_by": resumed_by}
        self.close(audit_id, rows=row.rows, status="interrupted", details=extra)


def ensure_table(conn: Connection[Any]) -> None:
    for stmt in AUDIT_DDL:
        conn.execute(stmt)


def read(conn: Connection[Any], audit_id: int) -> AuditRow:
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} WHERE id = %s", (audit_id,)
    ).fetchone()
    if found is None:
        raise KeyError(f"no audit row {audit_id}")
    return _row(found)


def rows_of(conn: Connection[Any], run_id: str | None = None) -> list[AuditRow]:
    """Audit rows, oldest first; of one run when ``run_id`` is given."""
    if not table_exists(conn, AUDIT_TABLE):
        return []
    if run_id is None:
        cur = conn.execute(f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} ORDER BY id")
    else:
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = %s ORDER BY id", (run_id,)
        )
    return [_row(r) for r in cur.fetchall()]


def table_exists(conn: Connection[Any], name: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(found and found[0])


def _row(r: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        id=int(r[0]),
        run_id=r[1],
        migration=r[2],
        phase=r[3],
        step=r[4],
        kind=r[5],
        started_at=int(r[6]),
        ended_at=None if r[7] is None else int(r[7]),
        rows=int(r[8]),
        status=r[9],
        error=r[10],
        details=r[11],
    )
