"""Where a server run stands: ``duru_migration_runs`` and ``duru_migration_progress``.

The device engine's two state tables (:mod:`duru.migrate.sqlite.state`), in
PostgreSQL. A chunked step's high-water mark is its last key, stored as a JSON
list of the key's values as text (server keys are uuids, not rowids). Both
tables are written in the same transactions as the work they describe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import Connection
from psycopg.types.json import Jsonb

from duru.migrate.postgres import audit
from duru.migrate.state import PROGRESS_TABLE, RUNS_TABLE, RunRecord, RunStatus
from duru.migrate.steps import ChunkState, StepProgress
from duru.model import now_ms

Key = tuple[str, ...]
_UNFINISHED = ("running", "paused", "failed")

STATE_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    run_id text PRIMARY KEY,
    source_version text NOT NULL,
    target_version text NOT NULL,
    migrations jsonb NOT NULL,
    status text NOT NULL
        CHECK (status IN ('running', 'paused', 'done', 'failed', 'rolled_back')),
    config jsonb NOT NULL,
    started_at bigint NOT NULL,
    ended_at bigint,
    error text
)""",
    f"""CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
    run_id text NOT NULL,
    step text NOT NULL,
    state text NOT NULL CHECK (state IN ('running', 'done')),
    audit_id bigint,
    hwm jsonb,
    rows bigint NOT NULL DEFAULT 0,
    placed bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    chunks bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step)
)""",
)

_RUN_COLUMNS = (
    "run_id, source_version, target_version, migrations, status, config, started_at,"
    " ended_at, error"
)


def ensure_tables(conn: Connection[Any]) -> None:
    """Create the audit, runs and progress tables when missing (in the caller's transaction)."""
    audit.ensure_table(conn)
    for stmt in STATE_DDL:
        conn.execute(stmt)


def exists(conn: Connection[Any]) -> bool:
    return audit.table_exists(conn, RUNS_TABLE)


def create_run(
    conn: Connection[Any],
    run_id: str,
    source: str,
    target: str,
    migrations: list[str],
    config: dict[str, Any],
) -> None:
    conn.execute(
        f"INSERT INTO {RUNS_TABLE} (run_id, source_version, target_version, migrations,"
        " status, config, started_at) VALUES (%s, %s, %s, %s, 'running', %s, %s)",
        (run_id, source, target, Jsonb(migrations), Jsonb(config), now_ms()),
    )


def get_run(conn: Connection[Any], run_id: str) -> RunRecord | None:
    if not exists(conn):
        return None
    found = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM {RUNS_TABLE} WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if found is None else _run(found)


def runs(conn: Connection[Any]) -> list[RunRecord]:
    """Every run, oldest first."""
    if not exists(conn):
        return []
    cur = conn.execute(f"SELECT {_RUN_COLUMNS} FROM {RUNS_TABLE} ORDER BY started_at, run_id")
    return [_run(r) for r in cur.fetchall()]


def active_run(conn: Connection[Any]) -> RunRecord | None:
    """The unfinished run (running, paused, or failed at a rollback point), if any.

    Unlike a device run, a failed server run stays resumable: the server
    cannot be restored from a backup, so the way out is forward (resume) or
    back (rollback), never a fresh start over half-done steps.
    """
    found = [r for r in runs(conn) if r.status in _UNFINISHED]
    return found[-1] if found else None


def last_run(conn: Connection[Any]) -> RunRecord | None:
    found = runs(conn)
    return found[-1] if found else None


def forget_run_progress(conn: Connection[Any], run_id: str) -> None:
    """Drop every step's progress of a run (after a rollback undid it)."""
    conn.execute(f"DELETE FROM {PROGRESS_TABLE} WHERE run_id = %s", (run_id,))


def set_status(
    conn: Connection[Any], run_id: str, status: RunStatus, error: str | None = None
) -> None:
    ended = None if status in ("running", "paused") else now_ms()
    conn.execute(
        f"UPDATE {RUNS_TABLE} SET status = %s, error = %s, ended_at = %s WHERE run_id = %s",
        (status, error, ended, run_id),
    )


def progress(conn: Connection[Any], run_id: str, step: str) -> StepProgress | None:
    found = conn.execute(
        f"SELECT state, audit_id, hwm, rows, placed, skipped, failed, chunks"
        f" FROM {PROGRESS_TABLE} WHERE run_id = %s AND step = %s",
        (run_id, step),
    ).fetchone()
    if found is None:
        return None
    hwm = None if found[2] is None else tuple(str(v) for v in found[2])
    rows, placed, skipped, failed, chunks = (int(v) for v in found[3:])
    chunk = ChunkState(hwm, rows, placed, 0, failed, chunks, skipped)
    return StepProgress(found[0], found[1], chunk)


def done_steps(conn: Connection[Any], run_id: str) -> list[str]:
    """Keys of the run's done steps, in the order they were finished."""
    cur = conn.execute(
        f"SELECT step FROM {PROGRESS_TABLE} WHERE run_id = %s AND state = 'done'"
        " ORDER BY audit_id, step",
        (run_id,),
    )
    return [str(r[0]) for r in cur.fetchall()]


@dataclass(frozen=True)
class Progressed:
    """A step of the run with stored progress: its key, state and current audit row."""

    step: str
    state: str
    audit_id: int


def progressed(conn: Connection[Any], run_id: str) -> list[Progressed]:
    """Every step of the run with stored progress, in the order they started."""
    cur = conn.execute(
        f"SELECT step, state, audit_id FROM {PROGRESS_TABLE} WHERE run_id = %s"
        " ORDER BY audit_id, step",
        (run_id,),
    )
    return [Progressed(str(s), str(st), int(a or 0)) for s, st, a in cur.fetchall()]


def save_progress(
    conn: Connection[Any],
    run_id: str,
    step: str,
    state: Literal["running", "done"],
    audit_id: int | None,
    totals: ChunkState,
) -> None:
    hwm = None if totals.hwm is None else Jsonb(_key(totals.hwm))
    conn.execute(
        f"INSERT INTO {PROGRESS_TABLE} (run_id, step, state, audit_id, hwm, rows, placed,"
        " skipped, failed, chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_id, step) DO UPDATE SET state = excluded.state,"
        " audit_id = excluded.audit_id, hwm = excluded.hwm, rows = excluded.rows,"
        " placed = excluded.placed, skipped = excluded.skipped, failed = excluded.failed,"
        " chunks = excluded.chunks",
        (
            run_id,
            step,
            state,
            audit_id,
            hwm,
            totals.rows,
            totals.placed,
            totals.skipped,
            totals.failed,
            totals.chunks,
        ),
    )


def forget_step(conn: Connection[Any], run_id: str, step: str) -> None:
    """Drop a step's progress (its work was undone by a rollback)."""
    conn.execute(f"DELETE FROM {PROGRESS_TABLE} WHERE run_id = %s AND step = %s", (run_id, step))


def _run(r: tuple[Any, ...]) -> RunRecord:
    migrations = r[3] if isinstance(r[3], list) else json.loads(r[3])
    return RunRecord(
        run_id=r[0],
        source_version=r[1],
        target_version=r[2],
        migrations=tuple(migrations),
        status=r[4],
        backup_path=None,
        config=dict(r[5]),
        stop_at=None,
        started_at=int(r[6]),
        ended_at=None if r[7] is None else int(r[7]),
        error=r[8],
    )


def _key(hwm: object) -> list[str]:
    # Server positions are key tuples (uuids as text), stored as a JSON list.
    if not isinstance(hwm, tuple):
        raise TypeError(f"a server high-water mark is a key tuple, not {hwm!r}")
    return [str(v) for v in hwm]
