"""The device runner: the core loop (:mod:`duru.migrate.runner`) on a device file.

What only a device has: transactions on the store's :class:`Database` (with
the foreign key pragmas set around a step that turns them off, since SQLite
ignores them inside a transaction), each step's :class:`StepContext`, and
streams: steps that drive their own loop in one transaction block and commit
checkpoints as they go. A chunked step's running row stays open when the run
stops itself: the rollback restores the backup image, a resume closes it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from duru.errors import MigrationError
from duru.local.db import Database
from duru.migrate.audit import Audit, AuditRow
from duru.migrate.chunking import ChunkLoop
from duru.migrate.config import RunConfig
from duru.migrate.migration import Migration
from duru.migrate.progress import Progress
from duru.migrate.runner import ChunkWork, StepRunner
from duru.migrate.sqlite import audit, state
from duru.migrate.sqlite.plan import Plan
from duru.migrate.sqlite.steps import (
    ChunkedAction,
    ChunkedStep,
    OutsideStep,
    Step,
    StepContext,
    StreamStep,
    TransactionStep,
    row_position,
)
from duru.migrate.state import RunStatus
from duru.migrate.steps import (
    Chunk,
    ChunkState,
    PlanStep,
    Position,
    StepProgress,
    StepResult,
    StopPoint,
    StopRun,
)
from duru.model import now_ms

T = TypeVar("T")


class _Reached(Exception):
    """A replay committed the checkpoint it was asked to stop at."""


class DeviceRunner(StepRunner):
    """Drives one run of a plan on an open device database (see :class:`StepRunner`)."""

    errors: ClassVar[tuple[type[Exception], ...]] = (sqlite3.Error,)

    def __init__(
        self,
        db: Database,
        plan: Plan,
        run_id: str,
        config: RunConfig,
        migrations: Mapping[str, Migration],
        progress: Progress | None = None,
        stop_at: StopPoint | None = None,
        *,
        limits: bool = True,
    ) -> None:
        super().__init__(run_id, plan.steps, config, progress, stop_at, limits=limits)
        self.db = db
        self.config = config
        self.migrations = migrations
        self._audit = audit.SqliteAudit(db.conn, run_id)
        self._contexts: dict[str, StepContext] = {}

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @property
    def audit(self) -> Audit:
        return self._audit

    def transaction(self) -> AbstractContextManager[Any]:
        return self.db.transaction()

    def in_step_transaction(self, step: PlanStep, body: Callable[[int], T], *, whole: bool) -> T:
        off = whole and isinstance(step, TransactionStep) and step.foreign_keys_off
        self._fk_off(off, True)
        try:
            with self.db.transaction():
                return body(1)
        finally:
            self._fk_off(off, False)

    def load_progress(self, key: str) -> StepProgress | None:
        return state.progress(self.conn, self.run_id, key)

    def save_progress(
        self, key: str, status: Literal["running", "done"], audit_id: int, chunk: ChunkState
    ) -> None:
        state.save_progress(self.conn, self.run_id, key, status, audit_id, chunk)

    def set_status(self, status: RunStatus, error: str | None = None) -> None:
        state.set_status(self.conn, self.run_id, status, error)

    def read_audit(self, audit_id: int) -> AuditRow:
        return audit.read(self.conn, audit_id)

    def cleared_stop(self) -> None:
        state.set_stop_at(self.conn, self.run_id, None)

    def act(self, step: PlanStep) -> StepResult:
        if not isinstance(step, TransactionStep | OutsideStep):
            raise MigrationError(f"step {step.key}: a {step.kind} step has no action")
        return step.action(self._ctx(step))

    def chunk_work(self, step: PlanStep) -> ChunkWork:
        if not isinstance(step, ChunkedStep):
            raise MigrationError(f"step {step.key}: a {step.kind} step has no chunks")
        return _DeviceChunks(step.work, self._ctx(step))

    def run_other(self, step: PlanStep, found: StepProgress | None) -> tuple[bool, ChunkState]:
        if not isinstance(step, StreamStep):
            return super().run_other(step, found)
        return self._stream(step, found)

    # -- device only -----------------------------------------------------------------

    def _ctx(self, step: PlanStep) -> StepContext:
        found = self._contexts.get(step.key)
        if found is None:
            m = self.migrations.get(step.migration)
            source = (step.quarantine_source if isinstance(step, Step) else None) or (
                m.quarantine_source if m else "migration run"
            )
            found = StepContext(self.db, self.run_id, step.migration, step.key, self.config, source)
            self._contexts[step.key] = found
        return found

    def _stream(self, step: StreamStep, found: StepProgress | None) -> tuple[bool, ChunkState]:
        ctx = self._ctx(step)
        with self.db.transaction():
            aid = self.open(step, found)
        current = found.chunk if found is not None else ChunkState()
        until = self.until(step.key)
        checkpoints = _Checkpoints(
            self,
            step,
            aid,
            current,
            self.chunk_loop(step, step.work.total(ctx)),
            None if until is None else _count(until),
        )
        try:
            with self.db.transaction():
                tail, extra = step.work.run(ctx, checkpoints)
                final = checkpoints.state if tail is None else checkpoints.state.plus(tail)
                self.close_span(step, aid, final, {"checkpoints": final.chunks, **extra})
        except _Reached:
            return True, checkpoints.state
        except StopRun:
            raise
        except Exception as exc:
            self.close_quietly(aid, checkpoints.state.rows, "failed", exc)
            raise
        return self._stops_after(step.key), final

    def _fk_off(self, off: bool, entering: bool) -> None:
        if not off:
            return
        # Both pragmas are ignored inside a transaction: set them around it.
        self.conn.execute(f"PRAGMA foreign_keys = {'OFF' if entering else 'ON'}")
        self.conn.execute(f"PRAGMA legacy_alter_table = {'ON' if entering else 'OFF'}")


@dataclass(frozen=True)
class _DeviceChunks:
    """A device chunked action bound to its step's context."""

    work: ChunkedAction
    ctx: StepContext

    def total(self) -> int | None:
        return self.work.total(self.ctx)

    def check_resume(self, state: ChunkState) -> None:
        self.work.check_resume(self.ctx, state)

    def chunk(self, after: Position | None, limit: int, until: Position | None) -> Chunk | None:
        return self.work.chunk(self.ctx, row_position(after), limit, row_position(until))

    def finish(self, state: ChunkState) -> tuple[ChunkState, Mapping[str, Any]]:
        return self.work.finish(self.ctx, state)

    def release(self) -> None:
        self.work.release(self.ctx)


@dataclass
class _Checkpoints:
    """The runner's side of a stream: commits, rollback points, and the chunk loop's judgement.

    A stream runs inside one ``with db.transaction()`` block; each checkpoint
    commits it and begins the next (``Database.commit_and_continue``), so the
    Database's nesting (savepoints for its writes) stays as it was.
    """

    runner: DeviceRunner
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
        self.runner.record_chunk(
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
