"""Steps: the units a run executes, records in the audit and can resume.

An operation becomes one or more steps (a rebuild: bridge, chunked copy,
swap). A step is *atomic* (one write transaction that also holds its audit
row), *chunked* (one transaction per chunk, each ending in a rollback point)
or *outside* a transaction (the backup writes another file), in which case a
``running`` audit row is committed first so that a crash leaves a trace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

from duru.errors import MigrationError
from duru.local.db import Database
from duru.migrate.config import RunConfig
from duru.migrate.ops import Phase

StepKind = Literal["atomic", "chunked", "stream", "outside"]
Position = int | str
"""A high-water mark: a rowid, a key (key-ordered copies), or a stream's write count."""


def reached(hwm: Position, until: Position) -> bool:
    """True when high-water mark ``hwm`` is at or past ``until`` (positions of one kind)."""
    if isinstance(hwm, int) and isinstance(until, int):
        return hwm >= until
    if isinstance(hwm, str) and isinstance(until, str):
        return hwm >= until
    raise MigrationError(f"cannot compare positions {hwm!r} and {until!r}")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


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


@dataclass(frozen=True)
class StepResult:
    """What an atomic or outside step did."""

    rows: int = 0
    quarantined: int = 0
    details: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class ChunkState:
    """How far a chunked step has come: its high-water mark and running totals."""

    hwm: Position | None = None
    rows: int = 0
    placed: int = 0
    quarantined: int = 0
    failed: int = 0
    chunks: int = 0

    def plus(self, chunk: ChunkResult) -> ChunkState:
        return ChunkState(
            hwm=chunk.hwm,
            rows=self.rows + chunk.rows,
            placed=self.placed + chunk.placed,
            quarantined=self.quarantined + chunk.quarantined,
            failed=self.failed + chunk.failed,
            chunks=self.chunks + 1,
        )


@dataclass(frozen=True)
class ChunkResult:
    """One committed chunk: rows read, placed and quarantined, and the new high-water mark.

    ``failed`` counts the rows charged to the error budget (quarantined rows
    of an operation whose rejections are failures).
    """

    hwm: Position
    rows: int
    placed: int
    quarantined: int
    failed: int = 0
    details: Mapping[str, Any] = field(default_factory=_empty)


class ChunkedAction(Protocol):
    """Work done in chunks, each in the runner's transaction, resumable from a hwm."""

    def total(self, ctx: StepContext) -> int:
        """Rows the step will process in all (for progress and ETA)."""
        ...

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        """Verify the work done so far before continuing it; MigrationError if it cannot be."""
        ...

    def chunk(
        self, ctx: StepContext, after: Position | None, limit: int, until: Position | None
    ) -> ChunkResult | None:
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

    def commit(self, chunk: ChunkResult) -> None: ...


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

    def run(
        self, ctx: StepContext, checkpoint: Checkpoint
    ) -> tuple[ChunkResult | None, dict[str, Any]]:
        """Do (or finish) the work; returns what came after the last checkpoint, and details.

        Runs inside the runner's transaction; the final checks belong here too.
        """
        ...


AtomicAction = Callable[[StepContext], StepResult]


@dataclass(frozen=True)
class Step:
    """One unit of a run, as the plan shows it and the runner executes it.

    ``key`` is stable across runs of the same migrations (resume and rollback
    find steps by it). ``sql`` is what runs, for the plan and dry runs (a
    chunked step shows its per-chunk statement). ``foreign_keys_off``: the step
    runs with foreign key enforcement off, set outside its transaction.
    ``quarantine_source``: what its rejected rows are recorded under (default:
    the migration).
    """

    key: str
    migration: str
    phase: Phase
    title: str
    kind: StepKind
    sql: tuple[str, ...] = ()
    estimate: int | None = None
    atomic: AtomicAction | None = None
    chunked: ChunkedAction | None = None
    stream: StreamAction | None = None
    foreign_keys_off: bool = False
    rollback_point: bool = True
    quarantine_source: str | None = None
