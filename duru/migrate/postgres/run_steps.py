"""The steps every server run ends with: ANALYZE, drop its snapshots, the report."""

from __future__ import annotations

from collections.abc import Iterable

from duru.migrate.ops import Phase, quote
from duru.migrate.postgres import state
from duru.migrate.postgres.rollback import DROP_SNAPSHOTS, run_snapshots
from duru.migrate.postgres.snapshot import drop_snapshot
from duru.migrate.postgres.steps import PgContext, PgStep, StepResult

RUN = "run"
ANALYZE = "run/analyze"
REPORT = "run/report"


def cleanup_steps(tables: Iterable[str]) -> list[PgStep]:
    """ANALYZE the tables the run changed, drop its snapshots, and mark it done."""
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
        PgStep(
            ANALYZE,
            RUN,
            Phase.CLEANUP,
            "ANALYZE the changed tables",
            "transaction",
            sql=statements,
            action=analyze,
            scan=True,
        ),
        PgStep(
            DROP_SNAPSHOTS,
            RUN,
            Phase.CLEANUP,
            "drop the run's snapshots (unless told to keep them)",
            "transaction",
            sql=("DROP TABLE duru_snapshot_<run>_<table>",),
            action=drop,
        ),
        PgStep(REPORT, RUN, Phase.CLEANUP, "report", "transaction", action=report),
    ]
