"""Return a database to any rollback point of a run, in one call.

Design: restore, then replay. Every run starts with a verified backup, and
every step is deterministic given the rows it reads (chunks go in rowid
order; a rollback point records the step and its high-water mark, not the
chunk sizes). So the state at any rollback point P is rebuilt by restoring
the run's backup and running the same steps again up to P, where the run
pauses. Undoing chunks one by one instead would need an inverse for every
step, including swaps that have dropped the old table; the backup has none
of that fragility and is verified before anything changes.

The restore is atomic: the backup is copied to a temporary file, the audit
trail and run records of the live file are carried into that copy (history
is never lost: rolled-back steps stay in the trail, followed by a
``run/rollback`` event, and rows a dead process left ``running`` are closed
as interrupted), and the copy is written over the live database with the
SQLite backup API in one transaction. A crash before that leaves the live
file untouched; a crash during the replay leaves a run that ``resume``
carries on to P.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duru.errors import NotFound, RollbackFailed
from duru.local.db import Database
from duru.migrate.audit import Where
from duru.migrate.config import RunConfig
from duru.migrate.migration import MigrationSet
from duru.migrate.progress import Progress
from duru.migrate.report import StepReport
from duru.migrate.sqlite import audit, state
from duru.migrate.sqlite.backup import restore
from duru.migrate.sqlite.planner import build_plan, chain_of
from duru.migrate.sqlite.run_steps import BACKUP, PREFLIGHT
from duru.migrate.sqlite.runner import DeviceRunner
from duru.migrate.state import RunRecord
from duru.migrate.steps import ChunkState, Position, StopPoint


@dataclass(frozen=True)
class RollbackPoint:
    """A state a run passed through and a rollback can return to."""

    id: int
    run_id: str
    step: str
    hwm: Position | None
    phase: str
    at: int
    rows: int

    @property
    def label(self) -> str:
        where = f" at {self.hwm!r}" if self.hwm is not None else " (done)"
        return f"#{self.id} {self.step}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "step": self.step,
            "hwm": self.hwm,
            "phase": self.phase,
            "at": self.at,
            "label": self.label,
        }


@dataclass(frozen=True)
class RollbackReport:
    """Where a rollback took the database, and what it replayed to get there."""

    run_id: str
    point: RollbackPoint | None
    backup_path: str
    status: str
    replayed: tuple[StepReport, ...]
    seconds: float

    def render(self) -> str:
        target = "the start of the run" if self.point is None else f"point {self.point.label}"
        lines = [f"run {self.run_id}: rolled back to {target} (from backup {self.backup_path})"]
        if self.replayed:
            rows = sum(s.rows for s in self.replayed)
            lines.append(f"replayed {len(self.replayed)} steps ({rows:,} rows); run is paused")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "point": None if self.point is None else self.point.to_json(),
            "backup_path": self.backup_path,
            "status": self.status,
            "replayed": [s.key for s in self.replayed],
            "seconds": round(self.seconds, 3),
        }


def points(conn: sqlite3.Connection, run_id: str | None = None) -> list[RollbackPoint]:
    """Rollback points (of one run, or of all), oldest first."""
    out = []
    for row in audit.rows_of(conn, run_id):
        point = row.point
        if point is None or row.status != "ok":
            continue
        hwm = point.get("hwm")
        out.append(
            RollbackPoint(
                row.id,
                row.run_id,
                str(point.get("step")),
                hwm if isinstance(hwm, int | str) else None,
                row.phase,
                row.ended_at or row.started_at,
                row.rows,
            )
        )
    return out


def rollback_to(
    db: Database,
    mset: MigrationSet,
    *,
    point_id: int | None = None,
    run_id: str | None = None,
    reason: str = "requested",
    progress: Progress | None = None,
) -> RollbackReport:
    """Return ``db`` to rollback point ``point_id``, or to the start of a run.

    Without ``point_id``, ``run_id`` (default: the latest run) goes back to
    its start and is marked rolled back; with it, the run is replayed from
    its backup up to that point and left paused. Runs started later are
    marked rolled back. Raises NotFound for an unknown point or run and
    RollbackFailed when the run's backup is missing.
    """
    start = time.perf_counter()
    point, run = _target(db.conn, point_id, run_id)
    if run.backup_path is None:
        raise RollbackFailed(f"run {run.run_id} has no backup yet; nothing was changed")
    backup = Path(run.backup_path)
    if not backup.exists():
        raise RollbackFailed(f"the backup of run {run.run_id} ({backup}) is missing")
    image = db.path.with_name(f".{db.path.name}.rollback-{run.run_id}.tmp")
    try:
        _prepare_image(db.conn, backup, image, run, point, reason)
        restore(image, db.path)
    finally:
        image.unlink(missing_ok=True)
    replayed: tuple[StepReport, ...] = ()
    status = "rolled_back"
    if point is not None:
        replayed = _replay(db, mset, run.run_id, progress)
        status = "paused"
    return RollbackReport(
        run.run_id, point, str(backup), status, replayed, time.perf_counter() - start
    )


def _target(
    conn: sqlite3.Connection, point_id: int | None, run_id: str | None
) -> tuple[RollbackPoint | None, RunRecord]:
    if point_id is not None:
        found = [p for p in points(conn) if p.id == point_id]
        if not found:
            raise NotFound(f"no rollback point {point_id} (see `duru migrate status`)")
        run = state.get_run(conn, found[0].run_id)
        if run is None:
            raise NotFound(f"rollback point {point_id} belongs to an unknown run")
        return found[0], run
    runs = state.runs(conn)
    if run_id is not None:
        runs = [r for r in runs if r.run_id == run_id]
    if not runs:
        raise NotFound("no migration run to roll back")
    return None, runs[-1]


def _prepare_image(
    live: sqlite3.Connection,
    backup: Path,
    image: Path,
    run: RunRecord,
    point: RollbackPoint | None,
    reason: str,
) -> None:
    """The backup with the live trail carried over and the run set to its new state."""
    trail, runs = audit.dump_all(live), state.dump_runs(live)
    shutil.copyfile(backup, image)
    conn = sqlite3.connect(image, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        audit.load_all(conn, trail)
        state.load_runs(conn, runs)
        _reset_progress(conn, run.run_id)
        later = [r for r in state.runs(conn) if r.started_at > run.started_at]
        for r in later:
            state.set_status(conn, r.run_id, "rolled_back", f"rolled back with run {run.run_id}")
        details = {
            "to": None if point is None else point.to_json(),
            "reason": reason,
            "backup": str(backup),
            "later_runs": [r.run_id for r in later],
        }
        event = audit.SqliteAudit(conn, run.run_id).record(
            Where("run", "rollback", "run/rollback"),
            started_at=_now(),
            kind="event",
            details=details,
        )
        for row in audit.rows_of(conn):
            if row.status == "running":
                audit.SqliteAudit(conn, row.run_id).interrupt(row.id, event, "rolled back")
        if point is None:
            state.set_stop_at(conn, run.run_id, None)
            state.set_status(conn, run.run_id, "rolled_back", reason)
        else:
            state.set_stop_at(conn, run.run_id, {"step": point.step, "hwm": point.hwm})
            state.set_status(conn, run.run_id, "running")
        conn.execute("COMMIT")
        # The restored pages sit in the WAL over the file's newer ones: fold them in, or
        # the file alone looks like another database (see engine._fold_wal).
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def _reset_progress(conn: sqlite3.Connection, run_id: str) -> None:
    """Progress as it was right after the backup: preflight and backup done."""
    state.clear_progress(conn, run_id)
    for key in (PREFLIGHT, BACKUP):
        rows = [r for r in audit.rows_of(conn, run_id) if r.step == key and r.status == "ok"]
        if rows:
            chunk = ChunkState(rows=rows[-1].rows)
            state.save_progress(conn, run_id, key, "done", rows[-1].id, chunk)


def _replay(
    db: Database, mset: MigrationSet, run_id: str, progress: Progress | None
) -> tuple[StepReport, ...]:
    run = state.get_run(db.conn, run_id)
    assert run is not None
    plan = build_plan(db, mset, run)
    config = RunConfig.from_json(run.config)
    runner = DeviceRunner(
        db,
        plan,
        run_id,
        config,
        chain_of(mset, run),
        progress,
        StopPoint.from_json(run.stop_at),
        limits=False,
    )
    runner.drive()
    return tuple(runner.done)


def _now() -> int:
    return time.time_ns() // 1_000_000
