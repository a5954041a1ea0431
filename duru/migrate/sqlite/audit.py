"""The audit trail in a device file: its table, and the SQLite side of :class:`Audit`.

The rows and their meaning are the core's (:mod:`duru.migrate.audit`).
Besides writing, a device carries its trail across a restore of the backup
(:func:`dump_all`, :func:`load_all`), since the trail must outlive a rollback.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from duru.migrate.audit import AUDIT_TABLE, COLUMNS, Audit, AuditRow, row_from
from duru.model import now_ms

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


class SqliteAudit(Audit):
    """Writes one run's audit rows in a device file (in the caller's transaction)."""

    def __init__(self, conn: sqlite3.Connection, run_id: str) -> None:
        super().__init__(run_id)
        self.conn = conn

    def _insert(self, values: tuple[Any, ...], details: Mapping[str, Any]) -> int:
        cur = self.conn.execute(
            f"INSERT INTO {AUDIT_TABLE} (run_id, migration, phase, step, kind, started_at,"
            " ended_at, rows, status, error, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, _dump(details)),
        )
        return int(cur.lastrowid or 0)

    def _end(
        self, audit_id: int, values: tuple[int, str, str | None], details: Mapping[str, Any]
    ) -> None:
        # A shallow merge, as PostgreSQL's jsonb || does (json_patch would merge deeply).
        merged = {**self.read(audit_id).details, **details}
        self.conn.execute(
            f"UPDATE {AUDIT_TABLE} SET ended_at = ?, rows = ?, status = ?, error = ?, details = ?"
            " WHERE id = ?",
            (now_ms(), *values, _dump(merged), audit_id),
        )

    def read(self, audit_id: int) -> AuditRow:
        return read(self.conn, audit_id)


def ensure_tables(conn: sqlite3.Connection) -> None:
    for stmt in AUDIT_DDL:
        conn.execute(stmt)


def read(conn: sqlite3.Connection, audit_id: int) -> AuditRow:
    found = conn.execute(f"SELECT {COLUMNS} FROM {AUDIT_TABLE} WHERE id = ?", (audit_id,))
    row = found.fetchone()
    if row is None:
        raise KeyError(f"no audit row {audit_id}")
    return _row(row)


def rows_of(conn: sqlite3.Connection, run_id: str | None = None) -> list[AuditRow]:
    """Audit rows, oldest first; of one run when ``run_id`` is given."""
    if not _exists(conn):
        return []
    if run_id is None:
        cur = conn.execute(f"SELECT {COLUMNS} FROM {AUDIT_TABLE} ORDER BY id")
    else:
        cur = conn.execute(
            f"SELECT {COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = ? ORDER BY id", (run_id,)
        )
    return [_row(r) for r in cur.fetchall()]


def running(conn: sqlite3.Connection, run_id: str) -> list[AuditRow]:
    """Rows of ``run_id`` still marked running (a process died during them)."""
    cur = conn.execute(
        f"SELECT {COLUMNS} FROM {AUDIT_TABLE} WHERE run_id = ? AND status = 'running' ORDER BY id",
        (run_id,),
    )
    return [_row(r) for r in cur.fetchall()]


def dump_all(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every audit row as stored, to carry the trail across a restore."""
    if not _exists(conn):
        return []
    return list(conn.execute(f"SELECT {COLUMNS} FROM {AUDIT_TABLE} ORDER BY id").fetchall())


def load_all(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Replace the audit trail with ``rows`` (from :func:`dump_all`), ids kept."""
    ensure_tables(conn)
    conn.execute(f"DELETE FROM {AUDIT_TABLE}")
    marks = ", ".join("?" for _ in COLUMNS.split(", "))
    conn.executemany(f"INSERT INTO {AUDIT_TABLE} ({COLUMNS}) VALUES ({marks})", rows)


def _exists(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", (AUDIT_TABLE,)
    ).fetchone()
    return bool(found[0])


def _row(r: tuple[Any, ...]) -> AuditRow:
    return row_from(r, json.loads(r[11]))


def _dump(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
