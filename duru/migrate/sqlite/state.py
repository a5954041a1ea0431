"""The run state tables in a device file (see :mod:`duru.migrate.state`), and their SQL."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Literal

from duru.migrate.state import PROGRESS_TABLE, RUNS_TABLE, RunRecord, RunStatus
from duru.migrate.steps import ChunkState, StepProgress
from duru.model import now_ms

STATE_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    run_id TEXT PRIMARY KEY,
    source_version TEXT NOT NULL,
    target_version TEXT NOT NULL,
    migrations TEXT NOT NULL CHECK (json_valid(migrations)),
    status TEXT NOT NULL
        CHECK (status IN ('running', 'paused', 'done', 'failed', 'rolled_back')),
    backup_path TEXT,
    config TEXT NOT NULL CHECK (json_valid(config)),
    stop_at TEXT CHECK (stop_at IS NULL OR json_valid(stop_at)),
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    error TEXT
) STRICT""",
    f"""CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    audit_id INTEGER,
    hwm ANY,
    rows INTEGER NOT NULL DEFAULT 0,
    placed INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
) STRICT""",
)

_RUN_COLUMNS = (
    "run_id, source_version, target_version, migrations, status, backup_path, config,"
    " stop_at, started_at, ended_at, error"
)


def ensure_tables(conn: sqlite3.Connection) -> None:
    for stmt in STATE_DDL:
        conn.execute(stmt)


def exists(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", (RUNS_TABLE,)
    ).fetchone()
    return bool(found[0])


def create_run(
    conn: sqlite3.Connection,
    run_id: str,
    source: str,
    target: str,
    migrations: list[str],
    config: dict[str, Any],
) -> None:
    conn.execute(
        f"INSERT INTO {RUNS_TABLE} (run_id, source_version, target_version, migrations, status,"
        " config, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?)",
        (run_id, source, target, json.dumps(migrations), json.dumps(config), now_ms()),
    )


def get_run(conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
    if not exists(conn):
        return None
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM {RUNS_TABLE} WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else _run(row)


def runs(conn: sqlite3.Connection) -> list[RunRecord]:
    """Every run, oldest first."""
    if not exists(conn):
        return []
    cur = conn.execute(f"SELECT {_RUN_COLUMNS} FROM {RUNS_TABLE} ORDER BY started_at, rowid")
    return [_run(r) for r in cur.fetchall()]


def active_run(conn: sqlite3.Connection) -> RunRecord | None:
    """The run that is not finished (running, paused or failed), if any; at most one is."""
    found = [r for r in runs(conn) if r.active]
    return found[-1] if found else None


def set_status(
    conn: sqlite3.Connection, run_id: str, status: RunStatus, error: str | None = None
) -> None:
    ended = None if status in ("running", "paused") else now_ms()
    conn.execute(
        f"UPDATE {RUNS_TABLE} SET status = ?, error = ?, ended_at = ? WHERE run_id = ?",
        (status, error, ended, run_id),
    )


def set_backup(conn: sqlite3.Connection, run_id: str, path: str) -> None:
    conn.execute(f"UPDATE {RUNS_TABLE} SET backup_path = ? WHERE run_id = ?", (path, run_id))


def set_stop_at(conn: sqlite3.Connection, run_id: str, stop_at: dict[str, Any] | None) -> None:
    conn.execute(
        f"UPDATE {RUNS_TABLE} SET stop_at = ? WHERE run_id = ?",
        (None if stop_at is None else json.dumps(stop_at, sort_keys=True), run_id),
    )


def progress(conn: sqlite3.Connection, run_id: str, step: str) -> StepProgress | None:
    row = conn.execute(
        f"SELECT state, audit_id, hwm, rows, placed, quarantined, failed, chunks"
        f" FROM {PROGRESS_TABLE} WHERE run_id = ? AND step = ?",
        (run_id, step),
    ).fetchone()
    if row is None:
        return None
    return StepProgress(row[0], row[1], ChunkState(*row[2:]))


def save_progress(
    conn: sqlite3.Connection,
    run_id: str,
    step: str,
    state: Literal["running", "done"],
    audit_id: int | None,
    chunk: ChunkState,
) -> None:
    conn.execute(
        f"INSERT INTO {PROGRESS_TABLE} (run_id, step, state, audit_id, hwm, rows, placed,"
        " quarantined, failed, chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (run_id, step) DO UPDATE SET state = excluded.state,"
        " audit_id = excluded.audit_id, hwm = excluded.hwm, rows = excluded.rows,"
        " placed = excluded.placed, quarantined = excluded.quarantined,"
        " failed = excluded.failed, chunks = excluded.chunks",
        (
            run_id,
            step,
            state,
            audit_id,
            chunk.hwm,
            chunk.rows,
            chunk.placed,
            chunk.quarantined,
            chunk.failed,
            chunk.chunks,
        ),
    )


def clear_progress(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute(f"DELETE FROM {PROGRESS_TABLE} WHERE run_id = ?", (run_id,))


def dump_runs(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    if not exists(conn):
        return []
    return list(conn.execute(f"SELECT {_RUN_COLUMNS} FROM {RUNS_TABLE} ORDER BY rowid"))


def load_runs(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Replace the runs table with ``rows`` (from :func:`dump_runs`)."""
    ensure_tables(conn)
    conn.execute(f"DELETE FROM {RUNS_TABLE}")
    marks = ", ".join("?" for _ in _RUN_COLUMNS.split(","))
    conn.executemany(f"INSERT INTO {RUNS_TABLE} ({_RUN_COLUMNS}) VALUES ({marks})", rows)


def _run(r: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=r[0],
        source_version=r[1],
        target_version=r[2],
        migrations=tuple(json.loads(r[3])),
        status=r[4],
        backup_path=r[5],
        config=json.loads(r[6]),
        stop_at=None if r[7] is None else json.loads(r[7]),
        started_at=r[8],
        ended_at=r[9],
        error=r[10],
    )
