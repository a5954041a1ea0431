"""Rolling a server run back: undo its done steps, newest first, each audited.

A server has no backup to restore, so a rollback walks the run's done steps
in reverse and runs each step's ``undo`` under the DDL policy: a dropped
column comes back from its verified snapshot, a NOT NULL is lifted, an added
column, constraint, index or trigger is dropped, ``duru_meta`` gets its old
version back. Steps that changed no schema (checks, backfills whose column
goes away with the expand) need no undo. When an undo cannot keep every row
(clients of the new release wrote rows only the new layout holds) it refuses
with RollbackFailed and the run stays where it is, forward still possible.

A rollback can also stop at a rollback point of the run (:func:`rollback_to_point`):
an audit row id, a done step's row or one chunk of a chunked step. Only the
steps done after that point are undone, and the run stays resumable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from duru.errors import DuruError, NotFound, RollbackFailed, UsageError
from duru.migrate.audit import AUDIT_TABLE, AuditRow
from duru.migrate.ops import quote
from duru.migrate.postgres import audit, state
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.plan import ServerPlan
from duru.migrate.postgres.seal import SealBackfill
from duru.migrate.postgres.session import mark_backfill
from duru.migrate.postgres.snapshot import drop_snapshot, snapshot_name, snapshots
from duru.migrate.postgres.state import Key, Progressed
from duru.migrate.postgres.steps import ChunkedStep, PgContext, PgStep, Undo
from duru.migrate.steps import Chunk, ChunkState
from duru.model import now_ms

DROP_SNAPSHOTS = "run/drop-snapshots"
ROLLBACK = "run/rollback"


@dataclass(frozen=True)
class ServerRollbackReport:
    """What a rollback undid, what needed no undo, and the snapshots it dropped."""

    run_id: str
    undone: tuple[str, ...]
    unchanged: tuple[str, ...]
    snapshots_dropped: tuple[str, ...]
    reason: str
    seconds: float
    point: Mapping[str, Any] | None = None

    def render(self) -> str:
        target, tail = "its start", ""
        if self.point is not None:
            hwm = self.point.get("hwm")
            at = "(done)" if hwm is None else f"at {', '.join(map(str, hwm))}"
            target = f"point #{self.point['id']} {self.point['step']} {at}"
            tail = "; resume to go on"
        return (
            f"run {self.run_id}: rolled back to {target} ({len(self.undone)} steps undone,"
            f" {len(self.unchanged)} needed no undo{tail}) in {self.seconds:.1f}s;"
            f" reason: {self.reason}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "undone": list(self.undone),
            "unchanged": list(self.unchanged),
            "snapshots_dropped": list(self.snapshots_dropped),
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "point": None if self.point is None else dict(self.point),
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
    undone, unchanged = _undo_all(ctx, log, steps, done[::-1])
    with conn.transaction():
        dropped = run_snapshots(conn, run_id)
        for name in dropped:
            drop_snapshot(conn, name)
        state.forget_run_progress(conn, run_id)
        state.set_status(conn, run_id, "rolled_back", reason)
    return ServerRollbackReport(
        run_id, tuple(undone), tuple(unchanged), tuple(dropped), reason, time.perf_counter() - t0
    )


def _undo(ctx: PgContext, log: PgAudit, key: str, undo: Undo, where: Where, started: int) -> None:
    conn = ctx.conn
    with conn.transaction():
        found = state.progress(conn, ctx.run_id, key)
        details: Mapping[str, Any] = {}
        if found is not None and found.audit_id is not None:
            details = audit.read(conn, found.audit_id).details
    try:
        undo(ctx, where, details)
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


# -- back to a rollback point -------------------------------------------------------------


def rollback_to_point(
    ctx: PgContext, plan: ServerPlan, point_id: int, reason: str
) -> ServerRollbackReport:
    """Undo what ``ctx.run_id`` did after rollback point ``point_id``; the run stays resumable.

    The point is an audit row id of the run: a done step's row (that step
    stays done) or a chunk row of a chunked step, whose progress goes back to
    that chunk (state running, its high-water mark and totals as they were
    then) so that resuming continues right after it. Every other step that
    started after the point is undone (done ones with their ``undo``, newest
    first, audited, under the DDL policy) and forgotten, with the snapshots
    they made; the run ends ``paused``.

    Rows the chunked step processed after the point: a seal backfill's
    ciphertexts of rows that still hold their plaintext are cleared again
    (lossless: such a ciphertext was made by the runner from that very
    plaintext, since a client write of either column clears the other), so
    the resumed backfill seals each row exactly once; the same goes for the
    whole of a seal backfill that started after the point. Other chunked steps
    leave them as they are and process them again on resume, which is safe
    because each is idempotent: the expand backfill writes only rows that
    still differ, the verification opens ciphertexts again, the reseal picks
    only rows without ciphertext.

    Raises NotFound for an id that is no live rollback point of the run (not
    in it, or undone by an earlier rollback), UsageError for a row that is no
    rollback point, RollbackFailed as :func:`rollback_run` does.
    """
    conn, run_id = ctx.conn, ctx.run_id
    log = PgAudit(conn, run_id)
    t0 = time.perf_counter()
    steps = {s.key: s for s in plan.steps}
    with conn.transaction():
        row = live_point(conn, run_id, point_id)
        key, hwm = _point_of(row)
        later = [p for p in state.progressed(conn, run_id) if p.step != key and p.audit_id > row.id]
        done = [p.step for p in later if p.state == "done"]
        _refuse_without_needed_snapshots(conn, run_id, later)
        made = _snapshots_made(conn, run_id, later)
        shown = {"id": row.id, "step": key, "hwm": None if hwm is None else list(hwm)}
        event = log.record(
            Where("run", "rollback", ROLLBACK),
            started_at=now_ms(),
            kind="event",
            status="running",
            details={"reason": reason, "to": row.id, "point": shown, "steps": done[::-1]},
        )
        _interrupt_running(conn, log, run_id, event)
        # Unfinished from here on: a rollback cut short leaves a run to resume or roll back.
        state.set_status(conn, run_id, "paused", f"rolling back to point #{row.id}")
    try:
        undone, unchanged = _undo_all(ctx, log, steps, done[::-1])
    except RollbackFailed as exc:
        with conn.transaction():
            log.close(event, rows=0, status="failed", error=str(exc))
        raise
    where = Where("run", "rollback", ROLLBACK)

    def finish(attempt: int) -> None:
        for name in made:
            drop_snapshot(conn, name)
        for p in later:
            state.forget_step(conn, run_id, p.step)
            _rewind(ctx, steps.get(p.step), None)
        if hwm is not None:
            _reset_to_chunk(ctx, steps.get(key), key, row, hwm)
        log.close(event, rows=0, status="ok", details={"undone": undone, "dropped": made})
        state.set_status(conn, run_id, "paused", f"rolled back to point #{row.id}; resume to go on")

    ctx.ddl.run(where, finish, statement_timeout=ctx.config.ddl.scan_timeout)
    return ServerRollbackReport(
        run_id,
        tuple(undone),
        tuple(unchanged),
        tuple(made),
        reason,
        time.perf_counter() - t0,
        shown,
    )


def live_point(conn: psycopg.Connection[Any], run_id: str, point_id: int) -> AuditRow:
    """The audit row of rollback point ``point_id`` of the run, if the run can return there.

    Raises NotFound when it is no row of the run or an earlier rollback undid
    it, UsageError when the row is no rollback point (an event, a failed try).
    """
    listed = "see `duru migrate history --server`"
    try:
        row = audit.read(conn, point_id)
    except KeyError:
        raise NotFound(f"no audit row {point_id} on this server ({listed})") from None
    if row.run_id != run_id:
        raise NotFound(f"audit row {point_id} is not in the last run {run_id} ({listed})")
    if row.kind not in ("step", "chunk") or row.status != "ok" or row.point is None:
        raise UsageError(
            f"audit row {point_id} ({row.kind} {row.step}, {row.status}) is not a rollback point:"
            f" pick a done step's or a chunk's row ({listed})"
        )
    key, _ = _point_of(row)
    found = state.progress(conn, run_id, key)
    if row.kind == "step":
        live = found is not None and found.state == "done" and found.audit_id == row.id
    else:
        live = found is not None and not any(lo < row.id < hi for lo, hi in _undone(conn, run_id))
    if not live:
        raise NotFound(f"point {point_id} ({key}) was undone by an earlier rollback ({listed})")
    return row


def _point_of(row: AuditRow) -> tuple[str, Key | None]:
    point = row.point or {}
    hwm = point.get("hwm")
    return str(point.get("step")), None if hwm is None else tuple(str(v) for v in hwm)


def _undone(conn: psycopg.Connection[Any], run_id: str) -> list[tuple[int, int]]:
    """(point, rollback event) id ranges of finished rollbacks: rows in between were undone."""
    cur = conn.execute(
        f"SELECT id, details->>'to' FROM {AUDIT_TABLE} WHERE run_id = %s AND step = %s"
        " AND status = 'ok' AND details ? 'to'",
        (run_id, ROLLBACK),
    )
    return [(int(to), int(i)) for i, to in cur.fetchall() if to is not None]


def _snapshots_made(
    conn: psycopg.Connection[Any], run_id: str, later: list[Progressed]
) -> list[str]:
    """Snapshots that steps after the point took (they will be taken again on resume)."""
    ours = set(run_snapshots(conn, run_id))
    return [name for _, name in _snapshots_taken(conn, later) if name in ours]


def _snapshots_taken(
    conn: psycopg.Connection[Any], progressed: list[Progressed]
) -> list[tuple[Progressed, str]]:
    """The done steps among ``progressed`` that took a snapshot, with its name."""
    taken = []
    for p in progressed:
        if p.state == "done":
            name = audit.read(conn, p.audit_id).details.get("snapshot")
            if isinstance(name, str):
                taken.append((p, name))
    return taken


def _refuse_without_needed_snapshots(
    conn: psycopg.Connection[Any], run_id: str, later: list[Progressed]
) -> None:
    """RollbackFailed when a step to undo comes after a snapshot that is gone.

    Only a drop after its snapshot step needs the snapshot to be undone; the
    run's cleanup steps (``run/...``) need none, so a finished run without
    its snapshots can still go back to a point after its last drop.
    """
    ours = set(run_snapshots(conn, run_id))
    taken = _snapshots_taken(conn, state.progressed(conn, run_id))
    gone = [(p.audit_id, name) for p, name in taken if name not in ours]
    if not gone:
        return
    first = min(gone)[0]
    if any(
        p.state == "done" and not p.step.startswith("run/") and p.audit_id > first for p in later
    ):
        raise RollbackFailed(
            f"run {run_id} dropped its snapshots ({', '.join(n for _, n in gone)}), so the"
            " columns it dropped after that point cannot come back; pick a later point, roll"
            " back only runs made with keep_snapshots, or write a new migration forward"
        )


def _interrupt_running(
    conn: psycopg.Connection[Any], log: PgAudit, run_id: str, event: int
) -> None:
    """Close the rows a dead process left ``running`` (the lock says none is alive)."""
    for row in audit.rows_of(conn, run_id):
        if row.status == "running" and row.id != event:
            log.interrupt(row.id, event, "rolled back")


def _undo_all(
    ctx: PgContext, log: PgAudit, steps: Mapping[str, PgStep], keys: list[str]
) -> tuple[list[str], list[str]]:
    """Undo ``keys`` in the order given, each audited and forgotten once undone."""
    conn, run_id = ctx.conn, ctx.run_id
    undone: list[str] = []
    unchanged: list[str] = []
    for key in keys:
        step = steps.get(key)
        where = Where(key.split("/")[0], "rollback", f"rollback/{key}")
        started = now_ms()
        if step is None or step.undo is None:
            unchanged.append(key)
        else:
            _undo(ctx, log, key, step.undo, where, started)
            undone.append(key)
        with conn.transaction():
            log.record(where, started_at=started, kind="event", details={"undone": key in undone})
            state.forget_step(conn, run_id, key)
    return undone, unchanged


def _reset_to_chunk(ctx: PgContext, step: PgStep | None, key: str, row: AuditRow, hwm: Key) -> None:
    """The chunked step's progress as right after chunk ``row``; rows after it rewound."""
    conn, run_id = ctx.conn, ctx.run_id
    ranges = _undone(conn, run_id)
    chunks = [
        r
        for r in audit.rows_of(conn, run_id)
        if r.kind == "chunk"
        and r.status == "ok"
        and r.id <= row.id
        and (r.point or {}).get("step") == key
        and not any(lo < r.id < hi for lo, hi in ranges)
    ]
    totals = ChunkState()
    for c in chunks:
        d = c.details
        chunk = Chunk(
            _point_of(c)[1] or (),
            c.rows,
            int(d.get("placed", 0)),
            failed=int(d.get("failed", 0)),
            skipped=int(d.get("skipped", 0)),
        )
        totals = totals.plus(chunk)
    if totals.chunks != int(row.details.get("chunk", totals.chunks)):
        raise RollbackFailed(
            f"the audit trail of {key} does not add up to chunk {row.details.get('chunk')} at"
            f" point #{row.id}; nothing of that step was changed"
        )
    found = state.progress(conn, run_id, key)
    aid = found.audit_id if found is not None and found.audit_id is not None else row.id
    state.save_progress(conn, run_id, key, "running", aid, replace(totals, hwm=hwm))
    _rewind(ctx, step, hwm)


def _rewind(ctx: PgContext, step: PgStep | None, hwm: Key | None) -> None:
    """Undo what a seal backfill did after ``hwm`` (None: all of it); other steps need not."""
    if not isinstance(step, ChunkedStep) or not isinstance(step.work, SealBackfill):
        return
    # Only rows that still hold their plaintext: their ciphertext came from it, nothing is lost.
    t, user = step.work.target, step.work.user_id
    cond, params = ("", (user,)) if hwm is None else (" AND id > %s", (user, hwm[0]))
    mark_backfill(ctx.conn)
    ctx.conn.execute(
        f"UPDATE {quote(t.table)} SET {quote(t.sealed)} = NULL WHERE user_id = %s{cond}"
        f" AND {quote(t.plain)} IS NOT NULL AND {quote(t.sealed)} IS NOT NULL",
        params,
    )
