"""The migration engine: lint, plan, phased runner, audit, rollback, for both databases.

Device files (SQLite) and the sync server (PostgreSQL) share one engine; each
dialect's folder holds only what differs between them.

Layout::

    duru/migrate/             the dialect-free core
      ops/                    operations as data (base: Phase, Operation, specs;
                              schema: tables, columns, indexes, foreign keys;
                              data: transforms, streams, raw SQL, metadata)
      migration.py            Migration, MigrationSet, and how both sides' plans
                              render their steps (render_plan, step_json)
      steps.py                PlanStep (the base of both sides' step types),
                              StepResult, Chunk, ChunkState, StepProgress, StopPoint,
                              StopRun, PauseRun: what steps of both sides are made of
      chunking.py             ChunkSizer, LatencyGuard, ErrorBudget, and ChunkLoop:
                              the one loop that sizes chunks, reports progress and
                              stops a run (budget, latency) on both sides
      runner.py               StepRunner: the one phased runner (step dispatch by
                              kind, audit rows, run state, progress, stop points);
                              each side subclasses it with its transactions
      progress.py             ProgressEvent, Progress
      audit.py, state.py      the audit trail and run state: rows, records, the writer
      report.py               StepReport
      config.py               RunConfig
      sqlite/                 device: step kinds (TransactionStep, OutsideStep,
                              ChunkedStep, StreamStep), the plan (Plan), DDL (impl: schema
                              changes; impl_copy: operations that copy rows;
                              builders; rebuild: a table rebuild run, its SQL in
                              rebuild_sql; transform, tables, verify), preflight, backup,
                              rollback by backup image, runner, engine, and the
                              SQL of audit and state
      postgres/               server: step kinds (TransactionStep, OutsideStep,
                              ChunkedStep), the plan (ServerPlan), safe DDL (lock
                              timeouts, retries), expand/contract, sealing,
                              preflight, rollback by undo, runner, engine, and the
                              SQL of audit and state
      device_migrations/      duru's own device migrations
      server_migrations/      duru's own server migrations
      lint/                   the linter: reads SQL files and strings, and judges
                              migrations declared as operations by the operation
                              objects (lint.operations), raw SQL as SQL

Shared before by copy (``diff`` of the pairs), now by one definition: the audit
row and writer, the run record, step progress and chunk totals, step results,
the chunk loop (three copies: device chunked, device stream, server chunked),
the runner's dispatch and bookkeeping, what every step has (PlanStep), the
step kinds' names (StepKind) and the plan's text and JSON.
Still one per side: each runner's transactions (the server runs every one
under its DDL policy and retries; the device sets its foreign key pragmas
around them), the device's streams, and the entry points.

Entry points for device files (``plan``, ``run``, ``resume``, ``status``,
``history``, ``rollback``) are re-exported here; the server's are in
:mod:`duru.migrate.postgres`. Everything is imported on first use, so that
``import duru.migrate`` (and every CLI call) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duru.migrate.config import RunConfig
    from duru.migrate.lint import Finding, LintReport, lint_paths
    from duru.migrate.progress import Progress, ProgressEvent
    from duru.migrate.sqlite.engine import (
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
    from duru.migrate.sqlite.plan import Plan
    from duru.migrate.sqlite.rollback import RollbackPoint, RollbackReport

_ENGINE = "duru.migrate.sqlite.engine"
_HOME = {
    "Finding": "duru.migrate.lint",
    "LintReport": "duru.migrate.lint",
    "MigrationStatus": _ENGINE,
    "Plan": "duru.migrate.sqlite.plan",
    "Progress": "duru.migrate.progress",
    "ProgressEvent": "duru.migrate.progress",
    "RollbackPoint": "duru.migrate.sqlite.rollback",
    "RollbackReport": "duru.migrate.sqlite.rollback",
    "RunConfig": "duru.migrate.config",
    "RunHistory": _ENGINE,
    "RunReport": _ENGINE,
    "history": _ENGINE,
    "lint_paths": "duru.migrate.lint",
    "plan": _ENGINE,
    "resume": _ENGINE,
    "rollback": _ENGINE,
    "run": _ENGINE,
    "status": _ENGINE,
}

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


def __getattr__(name: str) -> Any:
    # PEP 562: import the engine on first use, not when the CLI starts.
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
