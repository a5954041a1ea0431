"""Where a run stands, on either database: its run record and each step's progress.

Two tables beside the audit trail hold the state a resume reads:
``duru_migration_runs`` (one row per run: versions, migrations, status) and
``duru_migration_progress`` (one row per step: running or done, its audit row,
its chunk totals as :class:`~duru.migrate.steps.ChunkState`). Both are written
in the same transactions as the work they describe. The SQL of each dialect is
in ``sqlite.state`` and ``postgres.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RunStatus = Literal["running", "paused", "done", "failed", "rolled_back"]
RUNS_TABLE = "duru_migration_runs"
PROGRESS_TABLE = "duru_migration_progress"


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: versions, migrations, status, and (devices) backup and stop point."""

    run_id: str
    source_version: str
    target_version: str
    migrations: tuple[str, ...]
    status: str
    backup_path: str | None
    config: dict[str, Any]
    stop_at: dict[str, Any] | None
    started_at: int
    ended_at: int | None
    error: str | None

    @property
    def active(self) -> bool:
        """True while the run can be resumed: running, paused, or failed at a rollback point."""
        return self.status in ("running", "paused", "failed")
