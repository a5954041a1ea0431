"""The phased runner: executes a plan's steps in order, audited, resumable after any crash.

Every step either commits together with its audit row and progress (atomic
steps, each chunk of a chunked step) or first commits a ``running`` row that
a later resume closes as ``interrupted`` (steps outside a transaction, and the
span of a chunked step). A resume therefore starts from the last committed
rollback point: done steps are skipped, a chunked step continues after its
high-water mark once the work done so far has been checked again.

The runner stops itself (raising :class:`StopRun` for the caller to roll
back or pause) when failed rows pass the error budget or chunk latency
degrades; any other error leaves the run ``failed`` at its last rollback
point, resumable.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from duru.errors import DuruError, MigrationError
from duru.local.db import Database
from duru.migrate.audit import Where
from duru.migrate.chunking import ChunkLoop, StepLabel
from duru.migrate.config import RunConfig
from duru.migrate.migration import Migration
from duru.migrate.progress import Progress, ProgressEvent
from duru.migrate.report import StepReport
from duru.migrate.sqlite import audit, state
from duru.migrate.sqlite.plan import Plan
from duru.migrate.sqlite.steps import (
    AtomicStep,
    ChunkedAction,
    ChunkedStep,
    OutsideStep,
    Step,
    StepContext,
    StreamAction,
    StreamStep,
    row_position,
)
from duru.migrate.steps import (
    Chunk,
    ChunkState,
    Position,
    StepProgress,
    StopPoint,
    StopRun,
    error_text,
)
from duru.model import now_ms

_text = error_text


class _Reached(Exception):
    """A replay committed the checkpoint it was asked to stop at."""


@dataclass
class Runner:
    """Drives one run of a plan on an open device database.

    ``stop_at`` makes the run pause right after that rollback point (a
    rollback replays to it this way). ``limits`` off: no
    automatic stops (a replay re-does rows the original run already judged).
    """

    db: Database
    plan: Plan
    run_id: str
    config: RunConfig
    migrations: Mapping[str, Migration]
    progress: Progress | None = None
    stop_at: StopPoint | None = None
    limits: bool = True
    done: list[StepReport] = field(default_factory=list)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def drive(self) -> Literal["done", "paused"]:
        """Run every step not yet done; "paused" when ``stop_at`` was reached.

        Raises StopRun when the run stops itself, and the step's error (the run
        is then marked failed) for anything else.
        """
        self.audit = audit.SqliteAudit(self.conn, self.run_id)
        try:
            for step in self.plan.steps:
                found = state.progress(self.conn, self.run_id, step.key)
                if found is not None and found.state == "done":
                    if self._is_stop(step.key, None):
                        self._pause(step)
                        return "paused"
                    continue
                if self._run_step(step, found):
                    self._pause(step)
                    return "paused"
        except StopRun:
            raise
        except (DuruError, sqlite3.Error, OSError) as exc:
            self._fail(exc)
            if isinstance(exc, DuruError):
                raise
            raise MigrationError(f"migration step failed: {exc}") from exc
        return "done"

    # -- steps ------------------------------------------------------------------

    def _ctx(self, step: Step) -> StepContext:
        m = self.migrations.get(step.migration)
        source = step.quarantine_source or (m.quarantine_source if m else "migration run")
        return StepContext(self.db, self.run_id, step.migration, step.key, self.config, source)

    def _run_step(self, step: Step, found: StepProgress | None) -> bool:
        """Run one step; True when the run must pause right after it."""
        ctx = self._ctx(step)
        self._emit(ProgressEvent("start", step.key, step.title, step.phase.label))
        t0 = time.perf_counter()
        if isinstance(step, ChunkedStep):
            try:
                stopped, chunk = self._chunked(step, step.work, ctx, found)
            finally:  # done, stopped at a point, failed or stopped by a guard alike
                step.work.release(ctx)
            rows, quarantined = chunk.rows, chunk.quarantined
        elif isinstance(step, StreamStep):
            stopped, chunk = self._stream(step, step.work, ctx, found)
            rows, quarantined = chunk.rows, chunk.quarantined
        elif isinstance(step, OutsideStep):
            rows, quarantined = self._outside(step, ctx, found)
            stopped = self._is_stop(step.key, None)
        elif isinstance(step, AtomicStep):
            rows, quarantined = self._atomic(step, ctx)
            stopped = self._is_stop(step.key, None)
        else:
            raise MigrationError(f"step {step.key}: unknown kind {type(step).__name__}")
        seconds = time.perf_counter() - t0
        self.done.append(
            StepReport(step.key, step.phase.label, step.title, rows, quarantined, seconds)
        )
        self._emit(ProgressEvent("end", step.key, step.title, step.phase.label, done=rows))
        return stopped

    def _atomic(self, step: AtomicStep, ctx: StepContext) -> tuple[int, int]:
        started = now_ms()
        self._fk_off(step, True)
        try:
            with self.db.transaction():
                result = step.action(ctx)
                details = {"title": step.title, **result.details, "quarantined": result.quarantined}
                aid = self.audit.record(
                    _where(step),
                    started_at=started,
                    rows=result.rows,
                    details=self._point(step, details, None),
                )
                chunk = ChunkState(rows=result.rows, quarantined=result.quarantined)
                state.save_progress(self.conn, self.run_id, step.key, "done", aid, chunk)
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._record_failure(step, started, exc)
            raise
        finally:
            self._fk_off(step, False)
        return result.rows, result.quarantined

    def _outside(
        self, step: OutsideStep, ctx: StepContext, found: StepProgress | None
    ) -> tuple[int, int]:
        with self.db.transaction():
            aid = self._open(step, found)
        try:
            result = step.action(ctx)
        except Exception as exc:
            with self.db.transaction():
                self.audit.close(aid, rows=0, status="failed", error=_text(exc))
            raise
        with self.db.transaction():
            details = {**result.details, "quarantined": result.quarantined}
            self.audit.close(
                aid, rows=result.rows, status="ok", details=self._point(step, details, None)
            )
            chunk = ChunkState(rows=result.rows, quarantined=result.quarantined)
            state.save_progress(self.conn, self.run_id, step.key, "done", aid, chunk)
        return result.rows, result.quarantined

    def _chunked(
        self,
        step: Step,
        action: ChunkedAction,
        ctx: StepContext,
        found: StepProgress | None,
    ) -> tuple[bool, ChunkState]:
        with self.db.transaction():
            aid = self._open(step, found)
        current = found.chunk if found is not None else ChunkState()
        if found is not None:
            action.check_resume(ctx, current)
        until = self._until(step.key)
        loop = self._loop(step, action.total(ctx))

        def commit(current: ChunkState, limit: int) -> tuple[Chunk | None, ChunkState]:
            started, t0 = now_ms(), time.perf_counter()
            with self.db.transaction():
                res = action.chunk(ctx, row_position(current.hwm), limit, row_position(until))
                if res is None:
                    return None, self._close_chunked(step, action, ctx, aid, current)
                after = current.plus(res)
                self._record_chunk(step, aid, res, after, started, limit, t0)
                return res, after

        try:
            stopped, current = loop.drive(current, commit, until)
        except StopRun:
            raise  # the running row stays open: a resume (or the rollback) closes it
        except Exception as exc:
            with self.db.transaction():
                self.audit.close(aid, rows=current.rows, status="failed", error=_text(exc))
            raise
        return stopped or self._is_stop(step.key, None), current

    def _loop(self, step: Step, total: int | None) -> ChunkLoop:
        label = StepLabel(step.key, step.title, step.phase.label)
        return ChunkLoop(self.config, label, total, self._emit, self.limits)

    def _stream(
        self,
        step: Step,
        action: StreamAction,
        ctx: StepContext,
        found: StepProgress | None,
    ) -> tuple[bool, ChunkState]:
        with self.db.transaction():
            aid = self._open(step, found)
        current = found.chunk if found is not None else ChunkState()
        until = self._until(step.key)
        checkpoints = _Checkpoints(
            self,
            step,
            aid,
            current,
            self._loop(step, action.total(ctx)),
            None if until is None else _count(until),
        )
        try:
            with self.db.transaction():
                tail, extra = action.run(ctx, checkpoints)
                final = checkpoints.state if tail is None else checkpoints.state.plus(tail)
                details = {
                    "rows": final.rows,
                    "placed": final.placed,
                    "quarantined": final.quarantined,
                    "failed": final.failed,
                    "checkpoints": final.chunks,
                    **extra,
                }
                point = self._point(step, details, None)
                self.audit.close(aid, rows=final.rows, status="ok", details=point)
                state.save_progress(self.conn, self.run_id, step.key, "done", aid, final)
        except _Reached:
            return True, checkpoints.state
        except StopRun:
            raise
        except Exception as exc:
            with self.db.transaction():
                self.audit.close(
                    aid, rows=checkpoints.state.rows, status="failed", error=_text(exc)
                )
            raise
        return self._is_stop(step.key, None), final

    def _record_chunk(
        self,
        step: Step,
        aid: int,
        res: Chunk,
        current: ChunkState,
        started: int,
        limit: int,
        t0: float,
    ) -> None:
        details = {
            **res.details,
            "chunk": current.chunks,
            "size": limit,
            "placed": res.placed,
            "quarantined": res.quarantined,
            "failed": res.failed,
            "ms": round((time.perf_counter() - t0) * 1000, 2),
            "point": {"step": step.key, "hwm": res.hwm},
        }
        self.audit.record(
            _where(step),
            started_at=started,
            kind="chunk",
            rows=res.rows,
            details=details,
        )
        state.save_progress(self.conn, self.run_id, step.key, "running", aid, current)

    def _close_chunked(
        self, step: Step, action: ChunkedAction, ctx: StepContext, aid: int, current: ChunkState
    ) -> ChunkState:
        final, extra = action.finish(ctx, current)
        details = {
            "rows": final.rows,
            "placed": final.placed,
            "quarantined": final.quarantined,
            "failed": final.failed,
            "chunks": final.chunks,
            **extra,
        }
        self.audit.close(
            aid, rows=final.rows, status="ok", details=self._point(step, details, None)
        )
        state.save_progress(self.conn, self.run_id, step.key, "done", aid, final)
        return final

    # -- bookkeeping --------------------------------------------------------------

    def _open(self, step: Step, found: StepProgress | None) -> int:
        """A ``running`` row for a step spanning transactions (closing a dead one first)."""
        details: dict[str, Any] = {"title": step.title}
        previous = None
        if found is not None and found.audit_id is not None:
            previous = audit.read(self.conn, found.audit_id)
            details["resumed_from"] = previous.id
            details["hwm"] = found.chunk.hwm
        aid = self.audit.open(_where(step), details)
        if previous is not None and previous.status == "running":
            self.audit.interrupt(previous.id, aid, "the process ended before the step did")
        chunk = found.chunk if found is not None else ChunkState()
        state.save_progress(self.conn, self.run_id, step.key, "running", aid, chunk)
        return aid

    def _point(self, step: Step, details: dict[str, Any], hwm: int | None) -> dict[str, Any]:
        if step.rollback_point:
            details["point"] = {"step": step.key, "hwm": hwm}
        return details

    def _record_failure(self, step: Step, started: int, exc: Exception) -> None:
        try:
            with self.db.transaction():
                self.audit.record(
                    _where(step),
                    started_at=started,
                    status="failed",
                    error=_text(exc),
                    details={"title": step.title},
                )
        except sqlite3.Error:
            pass  # the original error matters more than its record

    def _fail(self, exc: BaseException) -> None:
        try:
            with self.db.transaction():
                state.set_status(self.conn, self.run_id, "failed", _text(exc))
        except sqlite3.Error:
            pass

    def _pause(self, step: Step) -> None:
        with self.db.transaction():
            self.audit.record(
                Where(step.migration, step.phase.label, "run/pause"),
                started_at=now_ms(),
                kind="event",
                details={"at": None if self.stop_at is None else self.stop_at.to_json()},
            )
            state.set_stop_at(self.conn, self.run_id, None)
            state.set_status(self.conn, self.run_id, "paused")

    def _until(self, key: str) -> Position | None:
        if self.stop_at is None or self.stop_at.step != key:
            return None
        return self.stop_at.hwm

    def _is_stop(self, key: str, hwm: int | None) -> bool:
        return self.stop_at is not None and self.stop_at.step == key and hwm is None

    def _fk_off(self, step: AtomicStep, off: bool) -> None:
        if not step.foreign_keys_off:
            return
        # Both pragmas are ignored inside a transaction: set them around it.
        self.conn.execute(f"PRAGMA foreign_keys = {'OFF' if off else 'ON'}")
        self.conn.execute(f"PRAGMA legacy_alter_table = {'ON' if off else 'OFF'}")

    def _emit(self, event: ProgressEvent) -> None:
        if self.progress is not None:
            self.progress(event)


@dataclass
class _Checkpoints:
    """The runner's side of a stream: commits, rollback points, and the chunk loop's judgement.

    A stream runs inside one ``with db.transaction()`` block; each checkpoint
    commits it and begins the next (``Database.commit_and_continue``), so the
    Database's nesting (savepoints for its writes) stays as it was.
    """

    runner: Runner
    step: Step
    aid: int
    state: ChunkState
    loop: ChunkLoop
    until: int | None
    t0: float = field(init=False)
    started: int = field(init=False)

    def __post_init__(self) -> None:
        self.t0 = time.perf_counter()
        self.started = now_ms()

    @property
    def resume_from(self) -> int | None:
        # A stream's positions count its writes.
        return None if self.state.hwm is None else _count(self.state.hwm)

    def due(self, position: int) -> bool:
        if self.until is not None and position >= self.until:
            return True
        return position - (self.resume_from or 0) >= self.loop.size

    def commit(self, chunk: Chunk) -> None:
        size = self.loop.size
        self.state = self.state.plus(chunk)
        self.runner._record_chunk(
            self.step, self.aid, chunk, self.state, self.started, size, self.t0
        )
        self.runner.db.commit_and_continue()
        elapsed = time.perf_counter() - self.t0
        reached_until = self.until is not None and _count(chunk.hwm) >= self.until
        self.t0, self.started = time.perf_counter(), now_ms()
        # At the point a replay was asked to stop at, stop there: no guard judges it.
        self.loop.after(chunk.rows, elapsed, self.state, judge=not reached_until)
        if reached_until:
            raise _Reached


def _count(hwm: Position) -> int:
    if isinstance(hwm, tuple):
        raise MigrationError(f"a stream's position is a count of writes, not {hwm!r}")
    return int(hwm)


def _where(step: Step) -> Where:
    return Where(step.migration, step.phase.label, step.key)
