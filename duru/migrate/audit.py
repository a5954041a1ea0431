"""The audit trail: every step of every run, in the database it changes.

Each row records one step (or one chunk, or an event such as a resume or a
rollback): run, migration, phase, step key, start, end, rows, status, error
and a JSON ``details``. An atomic step's row is written in the step's own
transaction, so the two commit together or not at all. A step that spans
transactions first commits a ``running`` row; if the process dies, the next
resume marks that row ``interrupted`` and points it at the row that carried
on (``details.resumed_by``), so the trail never has a start without an end.

Rows whose ``details.point`` is set are rollback points: the state of the
database right after that row committed can be rebuilt (see rollback.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from duru.model import now_ms

Status = Literal["running", "ok", "failed", "interrupted"]
Kind = Literal["step", "chunk", "event"]

AUDIT_TABLE = "duru_migration_audit"

AUDIT_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    migration TEXT NOT NULL,
    phase TEXT NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('step', 'chunk', 'event')),
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    rows INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
    error TEXT,
    details TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(details))
) STRICT""",
    f"CREATE INDEX IF NOT EXISTS ix_{AUDIT_TABLE}_run_id ON {AUDIT_TABLE} (run_id, id)",
)

_COLUMNS = (
    "id, run_id, migration, phase, step, kind, started_at, ended_at, rows, status, error, details"
)


@dataclass(frozen=True)
class AuditRow:
    """One row of the audit trail."""

    id: int
    run_id: str
    migration: str
    phase: str
    step: str
    kind: str
    started_at: int
    ended_at: int | None
    rows: int
    status: str
    error: str | None
    details: Mapping[str, Any]

    @property
    def point(self) -> Mapping[str, Any] | None:
        found = self.details.get("point")
        return found if isinstance(found, dict) else None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS.split(", ")}


@dataclass
class Audit:
    """Writes the audit rows of one run; every call runs in the caller's transaction."""

    conn: sqlite3.Connection
    run_id: str

    def record(
        self,
        migration: str,
        phase: str,
        step: str,
        *,
        started_at: int,
        kind: Kind = "step",
        rows: int = 0,
        status: Status = "ok",
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a finished row (ended now) and return its id."""
        ended = None if status == "running" else now_ms()
        cur = self.conn.execute(
            f"INSERT INTO {AUDIT_TABLE} (run_id, migration, phase, step, kind, started_at,"
            " ended_at, rows, status, error, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                migration,
                phase,
                step,
                kind,
                started_at,
                ended,
                rows,
                status,
                error,
                _dump(details or {}),
            ),
        )
        return int(cur.lastrowid or 0)

    def open(self, migration: str, phase: str, step: str, details: Mapping[str, Any]) -> int:
        """Insert a ``running`` row for a step that spans transactions."""
        return self.record(
            migration, phase, step, started_at=now_ms(), status="running", details=details
        )

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
        merged = {**read(self.conn, audit_id).details, **(details or {})}
        self.conn.execute(
            f"UPDATE {AUDIT_TABLE} SET ended_at = ?, rows = ?, status = ?, error = ?, details = ?"
            " WHERE id = ?",
            (now_ms(), rows, status, error, _dump(merged), audit_id),
        )

    def interrupt(self, audit_id: int, resumed_by: int | None, why: str) -> None:
        """Mark a ``running`` row left by a dead process as interrupted."""
        extra: dict[str, Any] = {"interrupted": why}
        if resumed_by is not None:
            extra["resumed_by"] = resumed_by
        row = read(self.conn, audit_id)
        self.close(audit_id, rows=row.rows, status="interrupted", details=extra)


def ensure_tables(conn: sqlite3.Connection) -> None:
    for stmt in AUDIT_DDL:
        conn.execute(stmt)


def read(conn: sqlite3.Connection, audit_id: int) -> AuditRow:
    found = conn.execute(f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} WHERE id = ?", (audit_id,))
    row = found.fetchone()
    if row is None:
        raise KeyError(f"no audit row {audit_id}")
    return _row(row)


def rows_of(conn: sqlite3.Connection, run_id: str | None = None) -> list[AuditRow]:
    """Audit rows, oldest first; of one run when ``run_id`` is given."""
    if not _exists(conn):
        return []
    if run_id is None:
        cur = conn.execute(f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} ORDER BY id")
    else:
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = ? ORDER BY id", (run_id,)
        )
    return [_row(r) for r in cur.fetchall()]


def running(conn: sqlite3.Connection, run_id: str) -> list[AuditRow]:
    """Rows of ``run_id`` still marked running (a process died during them)."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = ? AND status = 'running' ORDER BY id",
        (run_id,),
    )
    return [_row(r) for r in cur.fetchall()]


def dump_all(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every audit row as stored, to carry the trail across a restore."""
    if not _exists(conn):
        return []
    return list(conn.execute(f"SELECT {_COLUMNS} FROM {AUDIT_TABLE} ORDER BY id").fetchall())


def load_all(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Replace the audit trail with ``rows`` (from :func:`dump_all`), ids kept."""
    ensure_tables(conn)
    conn.execute(f"DELETE FROM {AUDIT_TABLE}")
    marks = ", ".join("?" for _ in _COLUMNS.split(", "))
    conn.executemany(f"INSERT INTO {AUDIT_TABLE} ({_COLUMNS}) VALUES ({marks})", rows)


def _exists(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", (AUDIT_TABLE,)
    ).fetchone()
    return bool(found[0])


def _row(r: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        id=r[0],
        run_id=r[1],
        migration=r[2],
        phase=r[3],
        step=r[4],
        kind=r[5],
        started_at=r[6],
        ended_at=r[7],
        rows=r[8],
        status=r[9],
        error=r[10],
        details=json.loads(r[11]),
    )


def _dump(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
