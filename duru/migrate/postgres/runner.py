"""The server runner: executes a plan's steps in order, audited, resumable after any crash.

Like the device runner (:mod:`duru.migrate.sqlite.runner`) on a PostgreSQL
connection: every transaction step commits with its audit row and progress,
every chunk with its audit row (a rollback point) and the step's high-water
mark; an outside step commits a ``running`` row first. A resumed run skips
done steps and continues a chunked step after its last committed chunk.

It stops itself with :class:`~duru.migrate.sqlite.runner.StopRun` when failed rows
pass the error budget or chunk latency degrades; a step that cannot go on
yet (:class:`PauseRun`, e.g. it needs another user's keys) pauses the run;
any other error leaves the run ``failed`` at its last rollback point.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from duru.errors import DuruError, MigrationError
from duru.migrate.chunking import ChunkLoop, StepLabel
from duru.migrate.ops import Phase
from duru.migrate.postgres import audit, state
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.plan import ServerPlan
from duru.migrate.postgres.steps import (
    ChunkedStep,
    OutsideStep,
    PgChunked,
    PgContext,
    PgStep,
    TransactionStep,
)
from duru.migrate.progress import Progress, ProgressEvent
from duru.migrate.report import StepReport
from duru.migrate.steps import (
    Chunk,
    ChunkState,
    PauseRun,
    StepProgress,
    StopPoint,
    StopRun,
    error_text,
)
from duru.model import now_ms

Outcome = Literal["done", "paused"]


@dataclass
class PgRunner:
    """Drives one run of a server plan.

    ``contract`` False: pause before the first cleanup-phase step (the
    contract waits until no client of the previous release is left).
    ``stop_after``: pause right after that step.
    """

    ctx: PgContext
    plan: ServerPlan
    progress: Progress | None = None
    contract: bool = True
    stop_after: str | None = None
    done: list[StepReport] = field(default_factory=list)
    reason: str | None = None

    def __post_init__(self) -> None:
        self.conn = self.ctx.conn
        self.audit = PgAudit(self.conn, self.ctx.run_id)

    def drive(self) -> Outcome:
        """Run every step not yet done; "paused" when told to, or when a step must wait.

        Raises StopRun when the run stops itself, and the step's error (the run
        is then marked failed) for anything else.
        """
        try:
            for step in self.plan.steps:
                found = self._progress(step.key)
                if found is not None and found.state == "done":
                    continue
                if not self.contract and step.phase is Phase.CLEANUP:
                    return self._pause(step, "the contract waits: run again with contract on")
                self._run_step(step, found)
                if step.key == self.stop_after:
                    return self._pause(step, f"stopped after {step.key} as asked")
        except PauseRun as pause:
            return self._pause(step, pause.reason)
        except StopRun:
            raise
        except (DuruError, psycopg.Error, OSError) as exc:
            self._fail(exc)
            if isinstance(exc, DuruError):
                raise
            raise MigrationError(f"server migration step {step.key} failed: {exc}") from exc
        return "done"

    # -- steps -----------------------------------------------------------------------

    def _run_step(self, step: PgStep, found: StepProgress | None) -> None:
        self._emit(ProgressEvent("start", step.key, step.title, step.phase.label))
        t0 = time.perf_counter()
        if isinstance(step, ChunkedStep):
            rows = self._chunked(step, step.work, found).rows
        elif isinstance(step, OutsideStep):
            rows = self._outside(step, found)
        elif isinstance(step, TransactionStep):
            rows = self._transaction(step)
        else:
            raise MigrationError(f"step {step.key}: unknown kind {type(step).__name__}")
        seconds = time.perf_counter() - t0
        self.done.append(StepReport(step.key, step.phase.label, step.title, rows, 0, seconds))
        self._emit(ProgressEvent("end", step.key, step.title, step.phase.label, done=rows))

    def _where(self, step: PgStep) -> Where:
        return Where(step.migration, step.phase.label, step.key)

    def _timeout(self, step: PgStep) -> float | None:
        return self.ctx.config.ddl.scan_timeout if step.scan else None

    def _transaction(self, step: TransactionStep) -> int:
        action = step.action
        started = now_ms()

        def body(attempt: int) -> int:
            result = action(self.ctx)
            details = {"title": step.title, **result.details, "attempt": attempt}
            details["point"] = {"step": step.key, "hwm": None}
            aid = self.audit.record(
                self._where(step), started_at=started, rows=result.rows, details=details
            )
            totals = ChunkState(rows=result.rows)
            state.save_progress(self.conn, self.ctx.run_id, step.key, "done", aid, totals)
            return result.rows

        try:
            rows, _ = self.ctx.ddl.run(
                self._where(step),
                body,
                statement_timeout=self._timeout(step),
                repeatable_read=step.repeatable_read,
            )
        except PauseRun:
            raise
        except Exception as exc:
            self._record_failure(step, started, exc)
            raise
        return rows

    def _outside(self, step: OutsideStep, found: StepProgress | None) -> int:
        with self.conn.transaction():
            aid = self._open(step, found)
        try:
            result = step.action(self.ctx)
        except Exception as exc:
            self._close(aid, 0, "failed", exc)
            raise
        with self.conn.transaction():
            details = {**result.details, "point": {"step": step.key, "hwm": None}}
            self.audit.close(aid, rows=result.rows, status="ok", details=details)
            totals = ChunkState(rows=result.rows)
            state.save_progress(self.conn, self.ctx.run_id, step.key, "done", aid, totals)
        return result.rows

    def _chunked(
        self, step: ChunkedStep, action: PgChunked, found: StepProgress | None
    ) -> ChunkState:
        with self.conn.transaction():
            aid = self._open(step, found)
            total = action.total(self.ctx)
        totals = found.chunk if found is not None else ChunkState()
        label = StepLabel(step.key, step.title, step.phase.label)
        loop = ChunkLoop(self.ctx.config.chunks, label, total, self._emit)

        def commit(totals: ChunkState, limit: int) -> tuple[Chunk | None, ChunkState]:
            return self._one_chunk(step, action, aid, totals, limit, now_ms())

        try:
            _, totals = loop.drive(totals, commit)
        except (StopRun, PauseRun) as exc:
            self._close(aid, totals.rows, "interrupted", exc)
            raise
        except Exception as exc:
            self._close(aid, totals.rows, "failed", exc)
            raise
        return totals

    def _one_chunk(
        self,
        step: PgStep,
        action: PgChunked,
        aid: int,
        totals: ChunkState,
        limit: int,
        started: int,
    ) -> tuple[Chunk | None, ChunkState]:
        """One chunk and its rollback point in one transaction, under the DDL policy.

        (None, totals) once the step is done (its closing transaction ran).
        """
        t0 = time.perf_counter()

        def body(attempt: int) -> tuple[Chunk | None, ChunkState]:
            key = totals.hwm if isinstance(totals.hwm, tuple) else None
            out = action.chunk(self.ctx, key, limit)
            if out is None:
                extra = action.finish(self.ctx, totals)
                self._finish(step, aid, totals, extra)
                return None, totals
            after = totals.plus(out)
            details = {
                **out.details,
                "chunk": after.chunks,
                "size": limit,
                "placed": out.placed,
                "skipped": out.skipped,
                "failed": out.failed,
                "attempt": attempt,
                "ms": round((time.perf_counter() - t0) * 1000, 2),
                "point": StopPoint(step.key, out.hwm).to_json(),
            }
            self.audit.record(
                self._where(step), started_at=started, kind="chunk", rows=out.rows, details=details
            )
            state.save_progress(self.conn, self.ctx.run_id, step.key, "running", aid, after)
            return out, after

        result, _ = self.ctx.ddl.run(self._where(step), body)
        return result

    def _finish(self, step: PgStep, aid: int, totals: ChunkState, extra: Mapping[str, Any]) -> None:
        details = {
            "rows": totals.rows,
            "placed": totals.placed,
            "skipped": totals.skipped,
            "failed": totals.failed,
            "chunks": totals.chunks,
            **extra,
            "point": {"step": step.key, "hwm": None},
        }
        self.audit.close(aid, rows=totals.rows, status="ok", details=details)
        state.save_progress(self.conn, self.ctx.run_id, step.key, "done", aid, totals)

    # -- bookkeeping ---------------------------------------------------------------------

    def _progress(self, key: str) -> StepProgress | None:
        with self.conn.transaction():
            return state.progress(self.conn, self.ctx.run_id, key)

    def _open(self, step: PgStep, found: StepProgress | None) -> int:
        """A ``running`` row for a step spanning transactions (closing a dead one first)."""
        details: dict[str, Any] = {"title": step.title}
        previous = None
        if found is not None and found.audit_id is not None:
            previous = audit.read(self.conn, found.audit_id)
            details["resumed_from"] = previous.id
            hwm = found.chunk.hwm
            details["hwm"] = list(hwm) if isinstance(hwm, tuple) else hwm
        aid = self.audit.open(self._where(step), details)
        if previous is not None and previous.status == "running":
            self.audit.interrupt(previous.id, aid, "the process ended before the step did")
        totals = found.chunk if found is not None else ChunkState()
        state.save_progress(self.conn, self.ctx.run_id, step.key, "running", aid, totals)
        return aid

    def _close(
        self, aid: int, rows: int, status: Literal["failed", "interrupted"], exc: Exception
    ) -> None:
        try:
            with self.conn.transaction():
                self.audit.close(aid, rows=rows, status=status, error=_text(exc))
        except psycopg.Error:
            pass  # the original error matters more than its record

    def _record_failure(self, step: PgStep, started: int, exc: Exception) -> None:
        try:
            with self.conn.transaction():
                self.audit.record(
                    self._where(step),
                    started_at=started,
                    status="failed",
                    error=_text(exc),
                    details={"title": step.title},
                )
        except psycopg.Error:
            pass

    def _fail(self, exc: BaseException) -> None:
        try:
            with self.conn.transaction():
                state.set_status(self.conn, self.ctx.run_id, "failed", _text(exc))
        except psycopg.Error:
            pass

    def _pause(self, step: PgStep, reason: str) -> Outcome:
        self.reason = reason
        with self.conn.transaction():
            self.audit.record(
                self._where(step),
                started_at=now_ms(),
                kind="event",
                details={"paused": reason},
            )
            state.set_status(self.conn, self.ctx.run_id, "paused", reason)
        return "paused"

    def _emit(self, event: ProgressEvent) -> None:
        if self.progress is not None:
            self.progress(event)


_text = error_text
