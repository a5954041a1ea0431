"""The server runner: the core loop (:mod:`duru.migrate.runner`) on a PostgreSQL connection.

What only the server has: every step's transaction runs under the DDL policy
(``lock_timeout`` and ``statement_timeout`` set, retried on lock timeouts, see
:class:`~duru.migrate.postgres.safe_ddl.SafeDDL`), one :class:`PgContext`
for the whole run, and the contract gate: with ``contract`` off the run
pauses before its first cleanup-phase step. A chunked step's running row is
closed as interrupted when the run stops itself, since the server's rollback
undoes steps by their audit rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import psycopg

from duru.errors import MigrationError
from duru.migrate.audit import Audit, AuditRow
from duru.migrate.ops import Phase
from duru.migrate.postgres import audit, state
from duru.migrate.postgres.audit import PgAudit
from duru.migrate.postgres.plan import ServerPlan
from duru.migrate.postgres.steps import (
    ChunkedStep,
    OutsideStep,
    PgChunked,
    PgContext,
    PgStep,
    TransactionStep,
)
from duru.migrate.progress import Progress
from duru.migrate.runner import ChunkWork, Outcome, StepRunner
from duru.migrate.state import RunStatus
from duru.migrate.steps import (
    Chunk,
    ChunkState,
    PlanStep,
    Position,
    StepProgress,
    StepResult,
    StopPoint,
)

__all__ = ["Outcome", "ServerRunner"]

T = TypeVar("T")


class ServerRunner(StepRunner):
    """Drives one run of a server plan (see :class:`StepRunner`).

    ``contract`` False: pause before the first cleanup-phase step (the
    contract waits until no client of the previous release is left).
    ``stop_after``: pause right after that step.
    """

    errors: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)
    close_on_stop: ClassVar[bool] = True

    def __init__(
        self,
        ctx: PgContext,
        plan: ServerPlan,
        progress: Progress | None = None,
        contract: bool = True,
        stop_after: str | None = None,
    ) -> None:
        stop = None if stop_after is None else StopPoint(stop_after)
        super().__init__(ctx.run_id, plan.steps, ctx.config.chunks, progress, stop)
        self.ctx = ctx
        self.conn = ctx.conn
        self.contract = contract
        self._audit = PgAudit(self.conn, ctx.run_id)

    @property
    def audit(self) -> Audit:
        return self._audit

    def transaction(self) -> AbstractContextManager[Any]:
        return self.conn.transaction()

    def in_step_transaction(self, step: PlanStep, body: Callable[[int], T], *, whole: bool) -> T:
        if not whole:
            return self.ctx.ddl.run(self.where(step), body)[0]
        scan = isinstance(step, PgStep) and step.scan
        result, _ = self.ctx.ddl.run(
            self.where(step),
            body,
            statement_timeout=self.ctx.config.ddl.scan_timeout if scan else None,
            repeatable_read=isinstance(step, PgStep) and step.repeatable_read,
        )
        return result

    def load_progress(self, key: str) -> StepProgress | None:
        with self.conn.transaction():
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
        """A server run keeps no stop point: it is given one per call."""
        return None

    def held(self, step: PlanStep) -> str | None:
        if not self.contract and step.phase is Phase.CLEANUP:
            return "the contract waits: run again with contract on"
        return None

    def act(self, step: PlanStep) -> StepResult:
        if not isinstance(step, TransactionStep | OutsideStep):
            raise MigrationError(f"step {step.key}: a {step.kind} step has no action")
        return step.action(self.ctx)

    def chunk_work(self, step: PlanStep) -> ChunkWork:
        if not isinstance(step, ChunkedStep):
            raise MigrationError(f"step {step.key}: a {step.kind} step has no chunks")
        return _ServerChunks(step.work, self.ctx)


@dataclass(frozen=True)
class _ServerChunks:
    """A server chunked action bound to the run's context; its positions are key tuples."""

    work: PgChunked
    ctx: PgContext

    def total(self) -> int | None:
        with self.ctx.conn.transaction():
            return self.work.total(self.ctx)

    def check_resume(self, state: ChunkState) -> None:
        """Nothing to check: each chunk re-reads its rows under the run's keys."""

    def chunk(self, after: Position | None, limit: int, until: Position | None) -> Chunk | None:
        return self.work.chunk(self.ctx, after if isinstance(after, tuple) else None, limit)

    def finish(self, state: ChunkState) -> tuple[ChunkState, Mapping[str, Any]]:
        return state, self.work.finish(self.ctx, state)

    def release(self) -> None:
        """Nothing held between chunks."""
