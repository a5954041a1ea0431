"""Server steps: the units a server run executes, audits, resumes and undoes.

A step runs in one of three ways, each a type of its own:

- ``transaction`` (:class:`TransactionStep`): one transaction with ``lock_timeout`` and
  ``statement_timeout`` set, retried on lock timeouts (:class:`SafeDDL`); its
  audit row and progress commit with it.
- ``outside`` (:class:`OutsideStep`): work that cannot run in a transaction (concurrent index
  builds); a ``running`` audit row is committed first and closed after.
- ``chunked`` (:class:`ChunkedStep`): one transaction per chunk (also under the timeouts), each
  ending in a rollback point: its audit row and the step's high-water mark.

``undo`` (optional) reverses a done step during a rollback; it runs in a
transaction under the same policy and gets the step's audit details.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from psycopg import Connection

from duru.crypto import AccountKeys
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.config import ServerRunConfig
from duru.migrate.postgres.safe_ddl import SafeDDL
from duru.migrate.postgres.state import Key
from duru.migrate.steps import Chunk, ChunkState, PauseRun, PlanStep, StepKind, StepResult

__all__ = [
    "STEP_TYPES",
    "Action",
    "Chunk",
    "ChunkedStep",
    "OutsideStep",
    "PauseRun",
    "PgChunked",
    "PgContext",
    "PgStep",
    "StepKind",
    "StepResult",
    "TransactionStep",
    "Undo",
]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass
class PgContext:
    """What a step's action gets: the connection, its DDL runner, the run, and the keys.

    ``keys`` maps a user id (canonical text) to that user's unlocked keys;
    only steps that seal or open values use it.
    """

    conn: Connection[Any]
    ddl: SafeDDL
    run_id: str
    config: ServerRunConfig
    keys: Mapping[str, AccountKeys] = field(default_factory=_empty)


class PgChunked(Protocol):
    """Work done in chunks in key order, each chunk in the runner's transaction."""

    def total(self, ctx: PgContext) -> int | None:
        """Rows the step will read in all, for progress (None: unknown)."""
        ...

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        """Process up to ``limit`` rows with keys after ``after``; None when none are left."""
        ...

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        """Checks once every chunk is in (in the closing transaction); details to record."""
        ...


Action = Callable[[PgContext], StepResult]
# An undo gets the audit place to record its attempts under and the step's audit details.
Undo = Callable[[PgContext, Where, Mapping[str, Any]], None]


@dataclass(frozen=True)
class PgStep(PlanStep):
    """What every server step has; the runner runs its subclasses.

    ``undo`` (optional) reverses the step once done, during a rollback;
    ``undo_sql`` renders it. ``scan``: the step scans a table without blocking
    writes (VALIDATE CONSTRAINT, a snapshot), so it runs under the policy's
    ``scan_timeout`` instead of ``statement_timeout``. ``repeatable_read``: the
    step's statements see one snapshot. ``notice``: what an operator must know
    once the step ran (the plan and the run's report show it).
    """

    _: KW_ONLY
    undo: Undo | None = None
    undo_sql: tuple[str, ...] = ()
    scan: bool = False
    repeatable_read: bool = False
    notice: str | None = None
    kind: ClassVar[StepKind]


@dataclass(frozen=True)
class TransactionStep(PgStep):
    """One transaction under the DDL policy, retried on lock timeouts, with its audit row."""

    action: Action
    kind: ClassVar[StepKind] = "transaction"


@dataclass(frozen=True)
class OutsideStep(PgStep):
    """Work that cannot run in a transaction; a ``running`` audit row is committed first."""

    action: Action
    kind: ClassVar[StepKind] = "outside"


@dataclass(frozen=True)
class ChunkedStep(PgStep):
    """Work in chunks, one transaction and one rollback point each."""

    work: PgChunked
    kind: ClassVar[StepKind] = "chunked"


STEP_TYPES: Mapping[StepKind, type[PgStep]] = MappingProxyType(
    {"transaction": TransactionStep, "outside": OutsideStep, "chunked": ChunkedStep}
)
"""The step type of each kind, for builders that take the kind as a word."""
