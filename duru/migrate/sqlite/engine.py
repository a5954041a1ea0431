"""Entry points of the migration engine for device files: plan, run, resume, status, rollback.

Each call opens the file, holds the per-file migration lock for its
duration, and closes it again; the CLI formats what they return.

    print(plan("notes.db").render())
    report = run("notes.db", progress=on_progress)   # or resume("notes.db")
    rollback("notes.db", to=point_id)               # any rollback point; None: the start
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from duru.errors import CorruptDatabase, MigrationError, NotFound, PreflightFailed
from duru.local.db import SQLITE_HEADER, Database, connect
from duru.migrate.audit import AuditRow, Where
from duru.migrate.config import RunConfig
from duru.migrate.device_migrations import DEVICE_MIGRATIONS
from duru.migrate.migration import MigrationSet
from duru.migrate.progress import Progress
from duru.migrate.report import StepReport
from duru.migrate.sqlite import audit, state
from duru.migrate.sqlite.lock import run_lock
from duru.migrate.sqlite.plan import Plan
from duru.migrate.sqlite.planner import build_plan, chain_of
from duru.migrate.sqlite.rollback import RollbackPoint, RollbackReport, points, rollback_to
from duru.migrate.sqlite.runner import DeviceRunner
from duru.migrate.state import RunRecord
from duru.migrate.steps import StopPoint, StopRun
from duru.model import now_ms

RunStatus = Literal["done", "paused", "up_to_date", "dry_run"]


@dataclass(frozen=True)
class RunReport:
    """What a run (or a dry run) did: versions, steps, rows, quarantine, backup."""

    status: RunStatus
    plan: Plan
    run_id: str | None = None
    steps: tuple[StepReport, ...] = ()
    backup_path: str | None = None
    seconds: float = 0.0
    checks: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Rows read by the chunked steps (copies and transforms) of this call."""
        return sum(s.rows for s in self.steps if s.key.endswith(".copy"))

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.steps if s.key.endswith(".copy"))

    def render(self) -> str:
        if self.status == "up_to_date":
            return self.plan.render()
        what = "dry run (on a copy)" if self.status == "dry_run" else f"run {self.run_id}"
        lines = [
            f"{what}: {self.plan.source_version} -> {self.plan.target_version}"
            f" {self.status} in {self.seconds:.1f}s",
            *(f"  {check}" for check in self.checks),
            f"  {self.rows:,} rows copied, {self.quarantined:,} of them quarantined",
        ]
        if self.backup_path:
            lines.append(f"  backup: {self.backup_path}")
        for s in self.steps:
            tail = f", {s.quarantined:,} quarantined" if s.quarantined else ""
            lines.append(f"    {s.key}  {s.rows:,} rows{tail}  {s.seconds:.2f}s")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_id": self.run_id,
            "source_version": self.plan.source_version,
            "target_version": self.plan.target_version,
            "migrations": list(self.plan.migrations),
            "rows": self.rows,
            "quarantined": self.quarantined,
            "backup_path": self.backup_path,
            "seconds": round(self.seconds, 3),
            "checks": list(self.checks),
            "steps": [
                {
                    "key": s.key,
                    "phase": s.phase,
                    "rows": s.rows,
                    "quarantined": s.quarantined,
                    "seconds": round(s.seconds, 3),
                }
                for s in self.steps
            ],
        }


@dataclass(frozen=True)
class MigrationStatus:
    """Where a file stands: its version, what is pending, the unfinished run and its points."""

    db_path: Path
    version: str
    target_version: str
    pending: tuple[str, ...]
    active: RunRecord | None
    last_run: RunRecord | None
    points: tuple[RollbackPoint, ...]

    def render(self) -> str:
        lines = [f"{self.db_path}: device schema {self.version} (this duru: {self.target_version})"]
        if self.pending:
            lines.append(f"  pending: {', '.join(self.pending)}")
        run = self.active or self.last_run
        if run is not None:
            lines.append(
                f"  {'unfinished' if self.active else 'last'} run {run.run_id}: {run.status}"
                + (f" ({run.error})" if run.error else "")
            )
            if run.backup_path:
                lines.append(f"  backup: {run.backup_path}")
            if self.active:
                lines.append(
                    "  half migrated: finish it with `duru migrate resume`, or undo it with"
                    " `duru migrate rollback` (both with --db)"
                )
        if self.points:
            lines.append(f"  rollback points: {len(self.points)}, latest {self.points[-1].label}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        run = self.active or self.last_run
        return {
            "database": str(self.db_path),
            "version": self.version,
            "target_version": self.target_version,
            "pending": list(self.pending),
            "active_run": None if self.active is None else self.active.run_id,
            "run": None if run is None else _run_json(run),
            "points": [p.to_json() for p in self.points],
        }


@dataclass(frozen=True)
class RunHistory:
    """One run and its audit trail."""

    run: RunRecord
    rows: tuple[AuditRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {"run": _run_json(self.run), "audit": [r.to_json() for r in self.rows]}


def plan(db_path: str | Path, *, migrations: MigrationSet | None = None) -> Plan:
    """What ``run`` would do to the file (or the rest of its unfinished run)."""
    mset = migrations or DEVICE_MIGRATIONS
    with _open(Path(db_path), RunConfig(), read_only=True) as db:
        return build_plan(db, mset, state.active_run(db.conn))


def run(
    db_path: str | Path,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    config: RunConfig | None = None,
    migrations: MigrationSet | None = None,
) -> RunReport:
    """Bring the file to the current schema version; continue an unfinished run first.

    A dry run checks (integrity, foreign keys, disk) and plans, and changes
    nothing. Raises PreflightFailed before anything changes, MigrationError
    (the run rolled back to its start, or paused) when it stopped itself, and
    the step's error otherwise (the run stays resumable at its last rollback
    point).
    """
    mset = migrations or DEVICE_MIGRATIONS
    path = Path(db_path)
    cfg = config or RunConfig()
    if dry_run:
        return _dry_run(path, mset, cfg, progress)
    with run_lock(path), _open(path, cfg) as db:
        active = state.active_run(db.conn)
        the_plan = build_plan(db, mset, active)
        if active is not None:
            return _continue(db, mset, active, progress, config)
        if the_plan.up_to_date:
            return RunReport("up_to_date", the_plan)
        run_id = _new_run_id()
        with db.transaction():
            audit.ensure_tables(db.conn)
            state.ensure_tables(db.conn)
            state.create_run(
                db.conn,
                run_id,
                the_plan.source_version,
                the_plan.target_version,
                list(the_plan.migrations),
                cfg.to_json(),
            )
            _event(db, run_id, "run/start", {"plan": the_plan.render()})
        return _drive(db, mset, the_plan, run_id, cfg, progress, None)


def resume(
    db_path: str | Path,
    *,
    progress: Progress | None = None,
    config: RunConfig | None = None,
    migrations: MigrationSet | None = None,
) -> RunReport:
    """Continue the file's unfinished run from its last rollback point.

    Raises NotFound when there is no unfinished run.
    """
    mset = migrations or DEVICE_MIGRATIONS
    path = Path(db_path)
    with run_lock(path), _open(path, config or RunConfig()) as db:
        active = state.active_run(db.conn)
        if active is None:
            raise NotFound(f"{path} has no unfinished migration run")
        return _continue(db, mset, active, progress, config)


def status(db_path: str | Path, *, migrations: MigrationSet | None = None) -> MigrationStatus:
    """The file's version, pending migrations, unfinished run and rollback points."""
    mset = migrations or DEVICE_MIGRATIONS
    path = Path(db_path)
    with _open(path, RunConfig(), read_only=True) as db:
        version = mset.detect(db.conn)
        active = state.active_run(db.conn)
        runs = state.runs(db.conn)
        last = runs[-1] if runs else None
        pending = tuple(m.id for m in mset.path(version)) if active is None else active.migrations
        shown = active or last
        found = tuple(points(db.conn, shown.run_id)) if shown is not None else ()
        return MigrationStatus(path, version, mset.current, pending, active, last, found)


def history(db_path: str | Path) -> list[RunHistory]:
    """Every run on the file, oldest first, each with its audit trail."""
    with _open(Path(db_path), RunConfig(), read_only=True) as db:
        return [RunHistory(r, tuple(audit.rows_of(db.conn, r.run_id))) for r in state.runs(db.conn)]


def rollback(
    db_path: str | Path,
    to: int | None = None,
    *,
    progress: Progress | None = None,
    migrations: MigrationSet | None = None,
) -> RollbackReport:
    """Return the file to rollback point ``to`` (an audit row id), or to the start of its last run.

    See :mod:`duru.migrate.sqlite.rollback` for how. Raises NotFound for an unknown
    point and RollbackFailed when the run's backup is missing.
    """
    mset = migrations or DEVICE_MIGRATIONS
    path = Path(db_path)
    with run_lock(path), _open(path, RunConfig()) as db:
        return rollback_to(db, mset, point_id=to, progress=progress)


# -- internals --------------------------------------------------------------------


def _continue(
    db: Database,
    mset: MigrationSet,
    active: RunRecord,
    progress: Progress | None,
    config: RunConfig | None,
) -> RunReport:
    cfg = config or RunConfig.from_json(active.config)
    with db.transaction():
        _event(db, active.run_id, "run/resume", {"was": active.status, "stop_at": active.stop_at})
        state.set_status(db.conn, active.run_id, "running")
    the_plan = build_plan(db, mset, active)
    return _drive(db, mset, the_plan, active.run_id, cfg, progress, active.stop_at)


def _drive(
    db: Database,
    mset: MigrationSet,
    the_plan: Plan,
    run_id: str,
    cfg: RunConfig,
    progress: Progress | None,
    stop_at: dict[str, Any] | None,
) -> RunReport:
    record = state.get_run(db.conn, run_id)
    assert record is not None
    start = time.perf_counter()
    point = StopPoint.from_json(stop_at)
    runner = DeviceRunner(db, the_plan, run_id, cfg, chain_of(mset, record), progress, point)
    try:
        outcome = runner.drive()
    except StopRun as stop:
        raise _stopped(db, mset, run_id, stop) from None
    record = state.get_run(db.conn, run_id)
    return RunReport(
        "done" if outcome == "done" else "paused",
        the_plan,
        run_id,
        tuple(runner.done),
        None if record is None else record.backup_path,
        time.perf_counter() - start,
    )


def _stopped(db: Database, mset: MigrationSet, run_id: str, stop: StopRun) -> MigrationError:
    """Roll back (or pause) a run that stopped itself; the error to raise."""
    if stop.action == "pause":
        with db.transaction():
            _event(db, run_id, "run/pause", {"reason": stop.reason, "step": stop.step})
            state.set_status(db.conn, run_id, "paused", stop.reason)
        return MigrationError(
            f"{stop.step}: {stop.reason}; the run paused at its last rollback point"
            " (resume when the device is idle)",
            retryable=True,
        )
    report = rollback_to(db, mset, run_id=run_id, reason=f"{stop.step}: {stop.reason}")
    return MigrationError(
        f"{stop.step}: {stop.reason}; the run stopped and rolled back to its start"
        f" (backup {report.backup_path}); the database is as it was before the run"
    )


def _dry_run(
    path: Path, mset: MigrationSet, cfg: RunConfig, progress: Progress | None
) -> RunReport:
    """Run the whole migration on a copy of the file, report, and throw the copy away.

    The copy is made through the backup API from a read-only connection, so the
    file itself is not touched (not even its journal mode).
    """
    with tempfile.TemporaryDirectory(prefix="duru-dry-run-") as tmp:
        copy = Path(tmp) / path.name
        with _open(path, cfg, read_only=True) as source:
            target = sqlite3.connect(copy)
            try:
                source.conn.backup(target)
            finally:
                target.close()
        report = run(
            copy,
            progress=progress,
            config=replace(cfg, backup_dir=Path(tmp) / "backups"),
            migrations=mset,
        )
    checks = (f"ran on a copy of {path}; the file itself was not changed",)
    return replace(report, status="dry_run", backup_path=None, checks=checks)


def _event(db: Database, run_id: str, step: str, details: dict[str, Any]) -> None:
    audit.SqliteAudit(db.conn, run_id).record(
        Where("run", "prepare", step), started_at=now_ms(), kind="event", details=details
    )


@contextmanager
def _open(path: Path, cfg: RunConfig, *, read_only: bool = False) -> Iterator[Database]:
    """The file as a Database; ``read_only`` opens it without changing a byte (no WAL switch)."""
    if not path.is_file():
        raise NotFound(f"no database at {path}")
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise PreflightFailed(f"{path} is not an SQLite database (bad header)")
    conn = _connect_read_only(path) if read_only else connect(path)
    conn.text_factory = _decode_text
    conn.execute(f"PRAGMA cache_size = -{cfg.cache_mb * 1024}")
    conn.execute(f"PRAGMA mmap_size = {cfg.mmap_mb * 1024 * 1024}")
    db = Database(conn, path)
    try:
        yield db
    finally:
        if not read_only:
            _fold_wal(conn)
        db.close()


def _fold_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file and empty it, best effort (a reader may hold it).

    A run or a rollback rewrites most pages; left in the WAL, they make the file alone
    look like another database (a rolled-back file's pages hold the device id the
    finished run gave it, the WAL the one a resumed run gives it), and the next open
    refuses the WAL as a stranger's (``duru.local.failures.check_wal_owner``).
    """
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:
        pass


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        raise CorruptDatabase(f"{path} is not a readable SQLite database: {exc}") from exc


def _decode_text(raw: bytes) -> str | bytes:
    # Legacy files can hold text that is not UTF-8: keep it as bytes, never fail the read.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def _run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "source_version": run.source_version,
        "target_version": run.target_version,
        "migrations": list(run.migrations),
        "status": run.status,
        "backup_path": run.backup_path,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
    }
