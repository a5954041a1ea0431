"""The migration engine: lint, plan, phased runner, audit, rollback.

The linter (`duru.migrate.lint`) reads migrations and reports dangerous SQL.
The device engine (`duru.migrate.engine`): ``plan``, ``run``, ``resume``,
``status``, ``history`` and ``rollback`` of a device file; operations are in
`duru.migrate.ops`, duru's own device migrations in `duru.migrate.device_migrations`.
"""

from __future__ import annotations

from duru.migrate.config import RunConfig
from duru.migrate.engine import (
    MigrationStatus,
    RunHistory,
    RunReport,
    history,
    plan,
    resume,
    rollback,
    run,
    status,
)
from duru.migrate.lint import Finding, LintReport, lint_paths
from duru.migrate.plan import Plan
from duru.migrate.progress import Progress, ProgressEvent
from duru.migrate.rollback import RollbackPoint, RollbackReport

__all__ = [
    "Finding",
    "LintReport",
    "MigrationStatus",
    "Plan",
    "Progress",
    "ProgressEvent",
    "RollbackPoint",
    "RollbackReport",
    "RunConfig",
    "RunHistory",
    "RunReport",
    "history",
    "lint_paths",
    "plan",
    "resume",
    "rollback",
    "run",
    "status",
]
