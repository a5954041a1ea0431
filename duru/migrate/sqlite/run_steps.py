"""The steps every run has, around the migrations' own: preflight, backup, cleanup, report."""

from __future__ import annotations

from duru.local.housekeeping import drop_small_statistics
from duru.migrate.ops import Phase, quote
from duru.migrate.sqlite import state
from duru.migrate.sqlite.backup import backup_path, take_backup
from duru.migrate.sqlite.preflight import preflight
from duru.migrate.sqlite.rebuild_sql import FENCE_PREFIX, SHADOW_PREFIX
from duru.migrate.sqlite.steps import OutsideStep, Step, StepContext, TransactionStep
from duru.migrate.state import PROGRESS_TABLE
from duru.migrate.steps import StepResult

RUN = "run"
PREFLIGHT = "run/preflight"
BACKUP = "run/backup"
DROP_BRIDGES = "run/drop-bridges"
ANALYZE = "run/analyze"
REPORT = "run/report"


def _preflight(ctx: StepContext) -> StepResult:
    report = preflight(ctx.conn, ctx.db.path, ctx.config, ctx.config.backup_dir)
    return StepResult(details=report.to_json())


def _backup(ctx: StepContext) -> StepResult:
    dest = backup_path(ctx.db.path, ctx.run_id, ctx.config.backup_dir)
    report = take_backup(ctx.conn, dest)
    state.set_backup(ctx.conn, ctx.run_id, str(dest))
    details = {
        "path": str(dest),
        "bytes": report.bytes,
        "tables": report.tables,
        "integrity": "ok",
        "seconds": round(report.seconds, 3),
    }
    return StepResult(rows=sum(report.tables.values()), details=details)


def _drop_bridges(ctx: StepContext) -> StepResult:
    found = ctx.conn.execute(
        "SELECT type, name FROM sqlite_schema WHERE (type = 'table' AND name LIKE ? ESCAPE '\\')"
        " OR (type = 'trigger' AND name LIKE ? ESCAPE '\\') ORDER BY type DESC, name",
        (_like(SHADOW_PREFIX), _like(FENCE_PREFIX)),
    ).fetchall()
    for kind, name in found:
        ctx.conn.execute(
            f"DROP {'TABLE' if kind == 'table' else 'TRIGGER'} IF EXISTS {quote(name)}"
        )
    return StepResult(details={"dropped": [str(n) for _, n in found]})


def _analyze(ctx: StepContext) -> StepResult:
    ctx.conn.execute("ANALYZE")
    # Not the statistics of small tables: they would outlive them (see the function).
    return StepResult(details={"small": drop_small_statistics(ctx.conn)})


def _report(ctx: StepContext) -> StepResult:
    rows, quarantined = ctx.conn.execute(
        f"SELECT coalesce(sum(rows), 0), coalesce(sum(quarantined), 0)"
        f" FROM {PROGRESS_TABLE} WHERE run_id = ? AND step LIKE '%.copy'",
        (ctx.run_id,),
    ).fetchone()
    state.set_status(ctx.conn, ctx.run_id, "done")
    return StepResult(
        rows=int(rows),
        quarantined=int(quarantined),
        details={"rows": int(rows), "quarantined": int(quarantined)},
    )


def prepare_steps(estimate: int | None) -> list[Step]:
    """Preflight (integrity, foreign keys, free disk, the write lock) and the verified backup."""
    return [
        TransactionStep(
            PREFLIGHT,
            RUN,
            Phase.PREPARE,
            "preflight: integrity, foreign keys, free disk, write lock",
            sql=("PRAGMA integrity_check", "PRAGMA foreign_key_check"),
            action=_preflight,
        ),
        OutsideStep(
            BACKUP,
            RUN,
            Phase.PREPARE,
            "backup (SQLite backup API), verified: integrity_check and row counts",
            sql=("sqlite3_backup to <db>.backups/<run id>.sqlite", "PRAGMA integrity_check"),
            estimate=estimate,
            action=_backup,
        ),
    ]


def cleanup_steps() -> list[Step]:
    """Drop leftover bridges, ANALYZE, and the final report (which marks the run done)."""
    return [
        TransactionStep(
            DROP_BRIDGES,
            RUN,
            Phase.CLEANUP,
            "drop bridges: leftover shadow tables and write fences",
            sql=(f"DROP TABLE {SHADOW_PREFIX}*", f"DROP TRIGGER {FENCE_PREFIX}*"),
            action=_drop_bridges,
        ),
        TransactionStep(
            RUN + "/analyze",
            RUN,
            Phase.CLEANUP,
            "ANALYZE",
            sql=("ANALYZE",),
            action=_analyze,
        ),
        TransactionStep(REPORT, RUN, Phase.CLEANUP, "report", action=_report),
    ]


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
