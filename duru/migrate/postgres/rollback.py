"""Rolling a server run back: undo its done steps, newest first, each audited.

A server has no backup to restore, so a rollback walks the run's done steps
in reverse and runs each step's ``undo`` under the DDL policy: a dropped
column comes back from its verified snapshot, a NOT NULL is lifted, an added
column, constraint, index or trigger is dropped, ``duru_meta`` gets its old
version back. Steps that changed no schema (checks, backfills whose column
goes away with the expand) need no undo. When an undo cannot keep every row
(clients of the new release wrote rows only the new layout holds) it refuses
with RollbackFailed and the run stays where it is, forward still possible.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from duru.errors import DuruError, RollbackFailed
from duru.migrate.audit import AUDIT_TABLE
from duru.migrate.postgres import audit, state
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.plan import ServerPlan
from duru.migrate.postgres.snapshot import drop_snapshot, snapshot_name, snapshots
from duru.migrate.postgres.steps import PgContext, PgStep
from duru.model import now_ms

DROP_SNAPSHOTS = "run/drop-snapshots"


@dataclass(frozen=True)
class ServerRollbackReport:
    """What a rollback undid, what needed no undo, and the snapshots it dropped."""

    run_id: str
    undone: tuple[str, ...]
    unchanged: tuple[str, ...]
    snapshots_dropped: tuple[str, ...]
    reason: str
    seconds: float

    def render(self) -> str:
        return (
            f"run {self.run_id}: rolled back to its start ({len(self.undone)} steps undone,"
            f" {len(self.unchanged)} needed no undo) in {self.seconds:.1f}s; reason: {self.reason}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "undone": list(self.undone),
            "unchanged": list(self.unchanged),
            "snapshots_dropped": list(self.snapshots_dropped),
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }


def run_snapshots(conn: psycopg.Connection[Any], run_id: str) -> list[str]:
    """The snapshot tables a run made that still exist."""
    prefix = snapshot_name(run_id, "")
    return [name for name in snapshots(conn) if name.startswith(prefix)]


def rollback_run(ctx: PgContext, plan: ServerPlan, reason: str) -> ServerRollbackReport:
    """Undo every done step of ``ctx.run_id`` (newest first); the run ends ``rolled_back``.

    Raises RollbackFailed when an undo refuses or fails (the steps undone so
    far stay undone and audited; the run is marked failed and can go forward).
    """
    conn, run_id = ctx.conn, ctx.run_id
    log = PgAudit(conn, run_id)
    t0 = time.perf_counter()
    steps = {s.key: s for s in plan.steps}
    with conn.transaction():
        done = state.done_steps(conn, run_id)
        _refuse_without_snapshots(conn, run_id, done)
        log.record(
            Where("run", "rollback", "run/rollback"),
            started_at=now_ms(),
            kind="event",
            details={"reason": reason, "steps": list(reversed(done))},
        )
    undone: list[str] = []
    unchanged: list[str] = []
    for key in reversed(done):
        step = steps.get(key)
        where = Where(key.split("/")[0], "rollback", f"rollback/{key}")
        started = now_ms()
        if step is None or step.undo is None:
            unchanged.append(key)
        else:
            _undo(ctx, log, step, where, started)
            undone.append(key)
        with conn.transaction():
            log.record(where, started_at=started, kind="event", details={"undone": key in undone})
            state.forget_step(conn, run_id, key)
    with conn.transaction():
        dropped = run_snapshots(conn, run_id)
        for name in dropped:
            drop_snapshot(conn, name)
        state.forget_run_progress(conn, run_id)
        state.set_status(conn, run_id, "rolled_back", reason)
    return ServerRollbackReport(
        run_id, tuple(undone), tuple(unchanged), tuple(dropped), reason, time.perf_counter() - t0
    )


def _undo(ctx: PgContext, log: PgAudit, step: PgStep, where: Where, started: int) -> None:
    conn, key = ctx.conn, step.key
    assert step.undo is not None
    with conn.transaction():
        found = state.progress(conn, ctx.run_id, key)
        details: Mapping[str, Any] = {}
        if found is not None and found.audit_id is not None:
            details = audit.read(conn, found.audit_id).details
    try:
        step.undo(ctx, where, details)
    except (DuruError, psycopg.Error) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        with conn.transaction():
            log.record(where, started_at=started, status="failed", error=text)
            state.set_status(conn, ctx.run_id, "failed", f"rollback stopped at {key}: {text}")
        if isinstance(exc, RollbackFailed):
            raise
        raise RollbackFailed(f"could not undo {key}: {text}") from exc


def _refuse_without_snapshots(conn: psycopg.Connection[Any], run_id: str, done: list[str]) -> None:
    if DROP_SNAPSHOTS not in done:
        return
    found = conn.execute(
        f"SELECT details FROM {AUDIT_TABLE} WHERE run_id = %s AND step = %s"
        " AND status = 'ok' ORDER BY id DESC LIMIT 1",
        (run_id, DROP_SNAPSHOTS),
    ).fetchone()
    dropped = (found[0] if found else {}).get("dropped") or []
    if dropped:
        raise RollbackFailed(
            f"run {run_id} finished and dropped its snapshots ({', '.join(dropped)}), so the"
            " columns it dropped cannot come back; roll back only runs made with"
            " keep_snapshots, or write a new migration forward"
        )
