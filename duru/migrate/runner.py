"""The phased runner of both databases: step dispatch, audit rows, run state, stop points.

:class:`StepRunner` executes a plan's steps in order, audited and resumable
after any crash, on either database. A ``transaction`` step commits together
with its audit row and progress; each chunk of a ``chunked`` step commits with
its audit row (a rollback point) and the step's high-water mark; an
``outside`` step, and the span of a chunked one, first commits a ``running``
row that a later resume closes as ``interrupted``. A resume skips done steps
and continues a chunked step after its last committed chunk.

The run stops itself (:class:`StopRun`, for the caller to roll back or
pause) when failed rows pass the error budget or chunk latency degrades
(:class:`~duru.migrate.chunking.ChunkLoop`); a step that cannot go on yet
(:class:`PauseRun`) pauses it; any other error leaves the run ``failed`` at
its last rollback point. A run also pauses right after its stop point, or
before a step the dialect holds back (:meth:`StepRunner.held`).

Each dialect's runner supplies only what differs: its transactions (the
server's run under its DDL policy and retry on lock timeouts; the device's
set foreign key pragmas around them), how its steps' work is called, and the
SQL of its audit and state tables.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from duru.errors import DuruError, MigrationError
from duru.migrate.audit import Audit, AuditRow, Status, Where
from duru.migrate.chunking import ChunkLoop, StepLabel
from duru.migrate.config import RunConfig
from duru.migrate.progress import Progress, ProgressEvent
from duru.migrate.report import StepReport
from duru.migrate.state import RunStatus
from duru.migrate.steps import (
    Chunk,
    ChunkState,
    PauseRun,
    PlanStep,
    Position,
    StepProgress,
    StepResult,
    StopPoint,
    StopRun,
    error_text,
)
from duru.model import now_ms

Outcome = Literal["done", "paused"]
T = TypeVar("T")


class ChunkWork(Protocol):
    """A chunked step's work, bound to its context by the dialect's runner."""

    def total(self) -> int | None:
        """Rows the step will process in all, for progress (None: unknown)."""
        ...

    def check_resume(self, state: ChunkState) -> None:
        """Verify the work done so far before continuing it; MigrationError if it cannot be."""
        ...

    def chunk(self, after: Position | None, limit: int, until: Position | None) -> Chunk | None:
        """Up to ``limit`` rows after ``after`` (never past ``until``); None when done.

        Runs in the chunk's transaction, with its audit row and progress.
        """
        ...

    def finish(self, state: ChunkState) -> tuple[ChunkState, Mapping[str, Any]]:
        """Checks once every chunk is in (in the closing transaction): final totals, details."""
        ...

    def release(self) -> None:
        """Free what the work holds between chunks; called however the step ends."""
        ...


class StepRunner(ABC):
    """Drives one run of a plan; subclasses supply the dialect (see the module doc).

    ``chunks`` sizes and judges chunks. ``stop_at``: pause right after that
    step, or within it at its high-water mark (a rollback replays to a point
    this way). ``limits`` off: no automatic stops (a replay re-does rows the
    original run already judged). After :meth:`drive`, ``done`` holds a
    report per step run and ``reason`` why the run paused.
    """

    def __init__(
        self,
        run_id: str,
        steps: Sequence[PlanStep],
        chunks: RunConfig,
        progress: Progress | None = None,
        stop_at: StopPoint | None = None,
        *,
        limits: bool = True,
    ) -> None:
        self.run_id = run_id
        self.steps = steps
        self.chunks = chunks
        self.progress = progress
        self.stop_at = stop_at
        self.limits = limits
        self.done: list[StepReport] = []
        self.reason: str | None = None

    errors: ClassVar[tuple[type[Exception], ...]] = ()
    """The database driver's errors: they mark the run failed, as MigrationError."""
    close_on_stop: ClassVar[bool] = False
    """Close a chunked step's running row as interrupted when the run stops itself.

    The server does (its rollback undoes steps by their rows); a device leaves
    it open for the resume, which links it to the row that carries on, or for
    the rollback, which restores the backup image.
    """

    # -- what each dialect supplies --------------------------------------------------

    @property
    @abstractmethod
    def audit(self) -> Audit:
        """The run's audit writer."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A plain transaction for the runner's own bookkeeping."""

    @abstractmethod
    def in_step_transaction(self, step: PlanStep, body: Callable[[int], T], *, whole: bool) -> T:
        """Run ``body(attempt)`` in the transaction a step's work runs in; its result.

        ``whole``: a transaction step's one transaction (else one chunk's).
        """

    @abstractmethod
    def load_progress(self, key: str) -> StepProgress | None: ...

    @abstractmethod
    def save_progress(
        self, key: str, state: Literal["running", "done"], audit_id: int, chunk: ChunkState
    ) -> None: ...

    @abstractmethod
    def set_status(self, status: RunStatus, error: str | None = None) -> None: ...

    @abstractmethod
    def read_audit(self, audit_id: int) -> AuditRow: ...

    @abstractmethod
    def act(self, step: PlanStep) -> StepResult:
        """Do the work of a transaction or outside step."""

    @abstractmethod
    def chunk_work(self, step: PlanStep) -> ChunkWork:
        """The work of a chunked step, bound to its context."""

    def run_other(self, step: PlanStep, found: StepProgress | None) -> tuple[bool, ChunkState]:
        """Run a kind only this dialect has (a device stream); (paused at it, totals)."""
        raise MigrationError(f"step {step.key}: unknown kind {step.kind}")

    def held(self, step: PlanStep) -> str | None:
        """Why the run must pause before ``step`` (the server's contract waits), or None."""
        return None

    @abstractmethod
    def cleared_stop(self) -> None:
        """The run paused at its stop point: forget it, where the dialect stores it."""

    # -- the run ---------------------------------------------------------------------

    def drive(self) -> Outcome:
        """Run every step not yet done; "paused" at the stop point or when a step must wait.

        Raises StopRun when the run stops itself, and the step's error (the run
        is then marked failed) for anything else.
        """
        step: PlanStep | None = None
        failing: tuple[type[Exception], ...] = (DuruError, OSError, *self.errors)
        try:
            for step in self.steps:
                found = self.load_progress(step.key)
                if found is not None and found.state == "done":
                    if self._stops_after(step.key):
                        return self._pause(step, self._asked(step))
                    continue
                wait = self.held(step)
                if wait is not None:
                    return self._pause(step, wait)
                if self._run_step(step, found):
                    return self._pause(step, self._asked(step))
        except PauseRun as pause:
            if step is None:
                raise
            return self._pause(step, pause.reason)
        except StopRun:
            raise
        except failing as exc:
            self._fail(exc)
            if isinstance(exc, DuruError):
                raise
            key = "" if step is None else f" {step.key}"
            raise MigrationError(f"migration step{key} failed: {exc}") from exc
        return "done"

    def _run_step(self, step: PlanStep, found: StepProgress | None) -> bool:
        """Run one step; True when the run must pause right after it."""
        self._emit(ProgressEvent("start", step.key, step.title, step.phase.label))
        t0 = time.perf_counter()
        if step.kind == "chunked":
            stopped, totals = self._chunked(step, found)
        elif step.kind == "outside":
            totals = self._outside(step, found)
            stopped = self._stops_after(step.key)
        elif step.kind == "transaction":
            totals = self._transaction(step)
            stopped = self._stops_after(step.key)
        else:
            stopped, totals = self.run_other(step, found)
        seconds = time.perf_counter() - t0
        self.done.append(
            StepReport(
                step.key, step.phase.label, step.title, totals.rows, totals.quarantined, seconds
            )
        )
        self._emit(ProgressEvent("end", step.key, step.title, step.phase.label, done=totals.rows))
        return stopped

    # -- step kinds ------------------------------------------------------------------

    def _transaction(self, step: PlanStep) -> ChunkState:
        started = now_ms()

        def body(attempt: int) -> ChunkState:
            result = self.act(step)
            details = {
                "title": step.title,
                **result.details,
                "quarantined": result.quarantined,
                "attempt": attempt,
            }
            aid = self.audit.record(
                self.where(step),
                started_at=started,
                rows=result.rows,
                details=self.point(step, details),
            )
            totals = ChunkState(rows=result.rows, quarantined=result.quarantined)
            self.save_progress(step.key, "done", aid, totals)
            return totals

        try:
            return self.in_step_transaction(step, body, whole=True)
        except PauseRun:
            raise
        except Exception as exc:
            self._record_failure(step, started, exc)
            raise

    def _outside(self, step: PlanStep, found: StepProgress | None) -> ChunkState:
        with self.transaction():
            aid = self.open(step, found)
        try:
            result = self.act(step)
        except Exception as exc:
            self.close_quietly(aid, 0, "failed", exc)
            raise
        with self.transaction():
            details = {**result.details, "quarantined": result.quarantined}
            self.audit.close(aid, rows=result.rows, status="ok", details=self.point(step, details))
            totals = ChunkState(rows=result.rows, quarantined=result.quarantined)
            self.save_progress(step.key, "done", aid, totals)
        return totals

    def _chunked(self, step: PlanStep, found: StepProgress | None) -> tuple[bool, ChunkState]:
        work = self.chunk_work(step)
        try:
            return self._chunks(step, work, found)
        finally:  # done, stopped at a point, failed or stopped by a guard alike
            work.release()

    def _chunks(
        self, step: PlanStep, work: ChunkWork, found: StepProgress | None
    ) -> tuple[bool, ChunkState]:
        with self.transaction():
            aid = self.open(step, found)
        current = found.chunk if found is not None else ChunkState()
        if found is not None:
            work.check_resume(current)
        until = self.until(step.key)
        loop = self.chunk_loop(step, work.total())

        def commit(current: ChunkState, limit: int) -> tuple[Chunk | None, ChunkState]:
            started, t0 = now_ms(), time.perf_counter()

            def body(attempt: int) -> tuple[Chunk | None, ChunkState]:
                res = work.chunk(current.hwm, limit, until)
                if res is None:
                    final, extra = work.finish(current)
                    self.close_span(step, aid, final, {"chunks": final.chunks, **extra})
                    return None, final
                after = current.plus(res)
                self.record_chunk(step, aid, res, after, started, limit, t0, attempt)
                return res, after

            return self.in_step_transaction(step, body, whole=False)

        try:
            stopped, current = loop.drive(current, commit, until)
        except (StopRun, PauseRun) as exc:
            if self.close_on_stop:
                self.close_quietly(aid, current.rows, "interrupted", exc)
            raise  # else the running row stays open: a resume (or the rollback) closes it
        except Exception as exc:
            self.close_quietly(aid, current.rows, "failed", exc)
            raise
        return stopped or self._stops_after(step.key), current

    # -- bookkeeping, for the dialects' own kinds too -----------------------------------

    def where(self, step: PlanStep) -> Where:
        return Where(step.migration, step.phase.label, step.key)

    def point(self, step: PlanStep, details: dict[str, Any]) -> dict[str, Any]:
        """``details`` marked as a rollback point after the whole step, when it is one."""
        if step.rollback_point:
            details["point"] = StopPoint(step.key).to_json()
        return details

    def chunk_loop(self, step: PlanStep, total: int | None) -> ChunkLoop:
        label = StepLabel(step.key, step.title, step.phase.label)
        return ChunkLoop(self.chunks, label, total, self._emit, self.limits)

    def open(self, step: PlanStep, found: StepProgress | None) -> int:
        """A ``running`` row for a step spanning transactions (closing a dead one first)."""
        details: dict[str, Any] = {"title": step.title}
        previous = None
        if found is not None and found.audit_id is not None:
            previous = self.read_audit(found.audit_id)
            details["resumed_from"] = previous.id
            hwm = found.chunk.hwm
            details["hwm"] = list(hwm) if isinstance(hwm, tuple) else hwm
        aid = self.audit.open(self.where(step), details)
        if previous is not None and previous.status == "running":
            self.audit.interrupt(previous.id, aid, "the process ended before the step did")
        chunk = found.chunk if found is not None else ChunkState()
        self.save_progress(step.key, "running", aid, chunk)
        return aid

    def record_chunk(
        self,
        step: PlanStep,
        aid: int,
        res: Chunk,
        after: ChunkState,
        started: int,
        limit: int,
        t0: float,
        attempt: int = 1,
    ) -> None:
        """A committed chunk's audit row (a rollback point) and the step's progress."""
        details = {
            **res.details,
            "chunk": after.chunks,
            "size": limit,
            "placed": res.placed,
            "quarantined": res.quarantined,
            "skipped": res.skipped,
            "failed": res.failed,
            "attempt": attempt,
            "ms": round((time.perf_counter() - t0) * 1000, 2),
            "point": StopPoint(step.key, res.hwm).to_json(),
        }
        self.audit.record(
            self.where(step), started_at=started, kind="chunk", rows=res.rows, details=details
        )
        self.save_progress(step.key, "running", aid, after)

    def close_span(
        self, step: PlanStep, aid: int, final: ChunkState, extra: Mapping[str, Any]
    ) -> None:
        """Close a spanning step's running row as done, with its totals and ``extra``."""
        details = self.point(step, {**final.totals(), **extra})
        self.audit.close(aid, rows=final.rows, status="ok", details=details)
        self.save_progress(step.key, "done", aid, final)

    def close_quietly(self, aid: int, rows: int, status: Status, exc: BaseException) -> None:
        """Close a running row after an error; a failure here never hides that error."""
        try:
            with self.transaction():
                self.audit.close(aid, rows=rows, status=status, error=error_text(exc))
        except self.errors:
            pass

    def until(self, key: str) -> Position | None:
        """Where within step ``key`` the run must pause (None: not within it)."""
        if self.stop_at is None or self.stop_at.step != key:
            return None
        return self.stop_at.hwm

    def _stops_after(self, key: str) -> bool:
        # Within a step, the chunk loop stops at the point; a step ended before it stops too.
        return self.stop_at is not None and self.stop_at.step == key

    def _asked(self, step: PlanStep) -> str:
        return f"stopped after {step.key} as asked"

    def _record_failure(self, step: PlanStep, started: int, exc: Exception) -> None:
        try:
            with self.transaction():
                self.audit.record(
                    self.where(step),
                    started_at=started,
                    status="failed",
                    error=error_text(exc),
                    details={"title": step.title},
                )
        except self.errors:
            pass  # the original error matters more than its record

    def _fail(self, exc: BaseException) -> None:
        try:
            with self.transaction():
                self.set_status("failed", error_text(exc))
        except self.errors:
            pass

    def _pause(self, step: PlanStep, reason: str) -> Outcome:
        self.reason = reason
        at = None if self.stop_at is None else self.stop_at.to_json()
        with self.transaction():
            self.audit.record(
                Where(step.migration, step.phase.label, "run/pause"),
                started_at=now_ms(),
                kind="event",
                details={"paused": reason, "at": at, "step": step.key},
            )
            self.cleared_stop()
            self.set_status("paused", reason)
        return "paused"

    def _emit(self, event: ProgressEvent) -> None:
        if self.progress is not None:
            self.progress(event)
