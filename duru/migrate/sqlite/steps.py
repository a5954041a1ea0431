"""Device steps: what an operation becomes on a device file, and what its actions get.

An operation becomes one or more steps (a rebuild: bridge, chunked copy,
swap); the kinds are described in :mod:`duru.migrate.steps`. The backup is an
*outside* step (it writes another file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Protocol

from duru.errors import MigrationError
from duru.local.db import Database
from duru.migrate.config import RunConfig
from duru.migrate.steps import Chunk, ChunkState, PlanStep, Position, StepKind, StepResult

RowPosition = int | str
"""A device high-water mark: a rowid, a key (key-ordered copies), or a stream's write count."""


def row_position(hwm: Position | None) -> RowPosition | None:
    """``hwm`` as a device position; MigrationError for a server key tuple."""
    if isinstance(hwm, tuple):
        raise MigrationError(f"a device position is a rowid, a key or a count, not {hwm!r}")
    return hwm


@dataclass
class StepContext:
    """What a step's action gets: the connection, the run, and where rejects go."""

    db: Database
    run_id: str
    migration: str
    step_key: str
    config: RunConfig
    quarantine_source: str
    backup_path: str | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn


class ChunkedAction(Protocol):
    """Work done in chunks, each in the runner's transaction, resumable from a hwm."""

    def total(self, ctx: StepContext) -> int:
        """Rows the step will process in all (for progress and ETA)."""
        ...

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        """Verify the work done so far before continuing it; MigrationError if it cannot be."""
        ...

    def chunk(
        self, ctx: StepContext, after: RowPosition | None, limit: int, until: RowPosition | None
    ) -> Chunk | None:
        """Process up to ``limit`` rows after ``after`` (never past ``until``); None when done."""
        ...

    def finish(self, ctx: StepContext, state: ChunkState) -> tuple[ChunkState, dict[str, Any]]:
        """Final checks once every chunk is in (inside the closing transaction).

        Returns the final totals (a finish may quarantine more rows) and details to record.
        """
        ...

    def release(self, ctx: StepContext) -> None:
        """Free what the action holds between chunks (a connection, a thread).

        The runner calls it whenever the step stops running: done, stopped at a
        point, failed, or stopped by a guard.
        """
        ...


class Checkpoint(Protocol):
    """Lets a stream commit its work so far as a rollback point.

    ``resume_from`` is the position of the last committed checkpoint (None at
    the start): a resumed stream must replay its work up to there without
    writing it again. A stream calls :meth:`due` at each safe point and, when
    it is, :meth:`commit` with what it did since the previous checkpoint.
    """

    @property
    def resume_from(self) -> int | None: ...

    def due(self, position: int) -> bool: ...

    def commit(self, chunk: Chunk) -> None: ...


class StreamAction(Protocol):
    """Work that drives its own loop (one ordered stream of writes), checkpointing as it goes.

    Its position counts writes in an order that is the same on every run
    over the same data, so a resume can replay to a checkpoint exactly.
    """

    def total(self, ctx: StepContext) -> int:
        """Rows the stream will read in all (for progress and ETA)."""
        ...

    def sample(self, ctx: StepContext, rows: int) -> StepResult:
        """Try the stream on its first ``rows`` writes and undo them (the bridge's check)."""
        ...

    def run(self, ctx: StepContext, checkpoint: Checkpoint) -> tuple[Chunk | None, dict[str, Any]]:
        """Do (or finish) the work; returns what came after the last checkpoint, and details.

        Runs inside the runner's transaction; the final checks belong here too.
        """
        ...


Action = Callable[[StepContext], StepResult]


@dataclass(frozen=True)
class Step(PlanStep):
    """What every device step has; the runner runs its subclasses.

    ``quarantine_source``: what its rejected rows are recorded under (default:
    the migration).
    """

    _: KW_ONLY
    quarantine_source: str | None = None
    kind: ClassVar[StepKind]


@dataclass(frozen=True)
class TransactionStep(Step):
    """One write transaction that also holds its audit row and progress.

    ``foreign_keys_off``: foreign key enforcement is off around it (SQLite
    ignores the pragma inside a transaction, so the runner sets it outside).
    """

    action: Action
    foreign_keys_off: bool = False
    kind: ClassVar[StepKind] = "transaction"


@dataclass(frozen=True)
class OutsideStep(Step):
    """Work outside a transaction (the backup writes another file); a running row comes first."""

    action: Action
    kind: ClassVar[StepKind] = "outside"


@dataclass(frozen=True)
class ChunkedStep(Step):
    """Work in chunks, one transaction and one rollback point each."""

    work: ChunkedAction
    kind: ClassVar[StepKind] = "chunked"


@dataclass(frozen=True)
class StreamStep(Step):
    """Work that drives its own loop in one transaction block, committing checkpoints."""

    work: StreamAction
    kind: ClassVar[StepKind] = "stream"


AnyStep = TransactionStep | OutsideStep | ChunkedStep | StreamStep
