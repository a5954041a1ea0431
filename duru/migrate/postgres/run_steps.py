"""The steps every server run ends with: ANALYZE, drop its snapshots, a checkpoint, the report.

The checkpoint step runs only when the run rewrote a table to remove a
dropped secret (:mod:`rewrite`): it rewrites pg_statistic (deleted statistics
of the dropped column and of the snapshots) and CHECKPOINTs, which makes
PostgreSQL delete the old data files (truncated to zero bytes when each
rewrite committed) and lets it recycle the WAL written before.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import errors

from duru.migrate.ops import Phase, quote
from duru.migrate.postgres import state
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.rewrite import STATISTICS, rewrite_sql, rewrite_statistics
from duru.migrate.postgres.rollback import DROP_SNAPSHOTS, run_snapshots
from duru.migrate.postgres.snapshot import drop_snapshot
from duru.migrate.postgres.steps import OutsideStep, PgContext, PgStep, TransactionStep
from duru.migrate.steps import StepResult

RUN = "run"
ANALYZE = "run/analyze"
REPORT = "run/report"
CHECKPOINT = "run/checkpoint"


def cleanup_steps(tables: Iterable[str], *, checkpoint: bool = False) -> list[PgStep]:
    """ANALYZE the tables the run changed, drop its snapshots, and mark it done.

    ``checkpoint``: after the snapshots are dropped, rewrite pg_statistic and
    CHECKPOINT (a run that rewrote secrets out of a table).
    """
    touched = tuple(dict.fromkeys(tables))
    statements = tuple(f"ANALYZE {quote(t)}" for t in touched)

    def analyze(ctx: PgContext) -> StepResult:
        for stmt in statements:
            ctx.conn.execute(stmt)
        return StepResult(details={"tables": list(touched)})

    def drop(ctx: PgContext) -> StepResult:
        if ctx.config.keep_snapshots:
            return StepResult(details={"kept": run_snapshots(ctx.conn, ctx.run_id), "dropped": []})
        dropped = run_snapshots(ctx.conn, ctx.run_id)
        for name in dropped:
            drop_snapshot(ctx.conn, name)
        return StepResult(details={"dropped": dropped})

    def report(ctx: PgContext) -> StepResult:
        state.set_status(ctx.conn, ctx.run_id, "done")
        return StepResult()

    return [
        TransactionStep(
            ANALYZE,
            RUN,
            Phase.CLEANUP,
            "ANALYZE the changed tables",
            sql=statements,
            action=analyze,
            scan=True,
        ),
        TransactionStep(
            DROP_SNAPSHOTS,
            RUN,
            Phase.CLEANUP,
            "drop the run's snapshots (unless told to keep them)",
            # Names are only known at run time: the plan shows the statement as a comment.
            sql=("-- DROP TABLE duru_snapshot_<run>_<table>, for each snapshot of the run",),
            action=drop,
        ),
        *([checkpoint_step()] if checkpoint else []),
        TransactionStep(REPORT, RUN, Phase.CLEANUP, "report", action=report),
    ]


def checkpoint_step() -> PgStep:
    """Rewrite pg_statistic, then CHECKPOINT, so no file of the database keeps dropped secrets.

    Runs after the snapshots are dropped: their statistics (and those of the
    dropped columns) are deleted rows of pg_statistic until it is rewritten. A
    role without the rights (superuser, MAINTAIN, pg_checkpoint) does not stop
    the run: the replaced table files are already empty and go at the next
    automatic checkpoint; the step's details say what was not done.
    """

    def run(ctx: PgContext) -> StepResult:
        where = Where(RUN, Phase.CLEANUP.label, CHECKPOINT)
        details = {"pg_statistic": rewrite_statistics(ctx, where)}
        try:
            ctx.ddl.outside(where, "CHECKPOINT")
        except errors.InsufficientPrivilege:
            return StepResult(details={**details, "checkpoint": "refused", "why": _NO_CHECKPOINT})
        return StepResult(details={**details, "checkpoint": "done"})

    return OutsideStep(
        CHECKPOINT,
        RUN,
        Phase.CLEANUP,
        "rewrite pg_statistic (planner statistics of what was dropped; planning waits for it)"
        " and CHECKPOINT, so PostgreSQL deletes the data files the rewrites replaced",
        sql=(rewrite_sql(STATISTICS), "CHECKPOINT"),
        action=run,
    )


_NO_CHECKPOINT = (
    "this role may not CHECKPOINT (needs superuser or pg_checkpoint); the replaced files are"
    " already truncated to zero bytes and go at the next automatic checkpoint"
)
