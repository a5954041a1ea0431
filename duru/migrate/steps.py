"""What every step of a run is made of, on either database: results, chunks, stops.

A step is one unit of a run that the runner executes, records in the audit and
can resume. Its *kind* (:data:`StepKind`, the word plans and their JSON show)
says how it runs; each dialect has a type per kind in its ``steps`` module:

- transaction: one transaction that also holds its audit row and progress;
- outside: work that cannot run in a transaction; a ``running`` audit row is
  committed first and closed after, so a crash leaves a trace;
- chunked: one transaction per chunk, each ending in a rollback point (its
  audit row and the step's high-water mark), resumable after the last one;
- stream (devices): work that drives its own loop and commits checkpoints.

This module holds the dialect-free records they share: :class:`PlanStep`
(what every step of either side has), :class:`StepResult`,
:class:`Chunk`, :class:`ChunkState`, :class:`StepProgress`, the stop points a
run can be asked to pause at, and the two ways a run stops itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from duru.errors import MigrationError
from duru.migrate.ops import Phase

StepKind = Literal["transaction", "outside", "chunked", "stream"]
"""How a step runs, on either database (the server has no stream steps)."""

Position = int | str | tuple[str, ...]
"""A high-water mark: a rowid or key (devices), a stream's write count, a key tuple (server)."""


def reached(hwm: Position, until: Position) -> bool:
    """True when high-water mark ``hwm`` is at or past ``until`` (positions of one kind)."""
    if isinstance(hwm, int) and isinstance(until, int):
        return hwm >= until
    if isinstance(hwm, str) and isinstance(until, str):
        return hwm >= until
    raise MigrationError(f"cannot compare positions {hwm!r} and {until!r}")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class PlanStep:
    """What every step has on either database, as the plan shows it.

    ``key`` is stable across runs of the same migrations (resume and rollback
    find steps by it). ``sql`` is what runs, for the plan, dry runs and the
    linter (a chunked step shows its per-chunk statements). ``kind`` names the
    step's type in plans and their JSON. ``rollback_point``: its audit row is
    a point to roll back to.
    """

    key: str
    migration: str
    phase: Phase
    title: str
    _: KW_ONLY
    sql: tuple[str, ...] = ()
    estimate: int | None = None
    rollback_point: bool = True
    kind: ClassVar[StepKind]


@dataclass(frozen=True)
class StepResult:
    """What a transaction or outside step did: rows, rows quarantined, details for the audit."""

    rows: int = 0
    quarantined: int = 0
    details: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class Chunk:
    """One committed chunk of a chunked step, and its new high-water mark.

    ``placed``: rows written; ``quarantined``: rows set aside (devices);
    ``skipped``: rows left as they were (already done, or changed by a client
    meanwhile; server); ``failed``: rows charged to the error budget.
    """

    hwm: Position
    rows: int
    placed: int
    quarantined: int = 0
    failed: int = 0
    details: Mapping[str, Any] = field(default_factory=_empty)
    skipped: int = 0


@dataclass(frozen=True)
class ChunkState:
    """How far a chunked step has come: its high-water mark and running totals."""

    hwm: Position | None = None
    rows: int = 0
    placed: int = 0
    quarantined: int = 0
    failed: int = 0
    chunks: int = 0
    skipped: int = 0

    def plus(self, chunk: Chunk) -> ChunkState:
        return ChunkState(
            hwm=chunk.hwm,
            rows=self.rows + chunk.rows,
            placed=self.placed + chunk.placed,
            quarantined=self.quarantined + chunk.quarantined,
            failed=self.failed + chunk.failed,
            chunks=self.chunks + 1,
            skipped=self.skipped + chunk.skipped,
        )

    def totals(self) -> dict[str, int]:
        """The counts, for audit details."""
        return {
            "rows": self.rows,
            "placed": self.placed,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class StepProgress:
    """A step's stored progress: running or done, its current audit row, its chunk totals."""

    state: str
    audit_id: int | None
    chunk: ChunkState


@dataclass(frozen=True)
class StopPoint:
    """Where a run is asked to pause: right after step ``step``, or within it at ``hwm``.

    A rollback to a point replays the run to it this way; ``duru migrate run``
    on the server can stop after a named step.
    """

    step: str
    hwm: Position | None = None

    def to_json(self) -> dict[str, Any]:
        hwm = list(self.hwm) if isinstance(self.hwm, tuple) else self.hwm
        return {"step": self.step, "hwm": hwm}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StopPoint | None:
        if not data or not isinstance(data.get("step"), str):
            return None
        hwm = data.get("hwm")
        if isinstance(hwm, list):
            hwm = tuple(str(v) for v in hwm)
        return cls(str(data["step"]), hwm if isinstance(hwm, int | str | tuple) else None)


class StopRun(Exception):
    """The run stopped itself (error budget or latency); ``action``: roll back or pause."""

    def __init__(self, action: Literal["rollback", "pause"], reason: str, step: str) -> None:
        super().__init__(reason)
        self.action = action
        self.reason = reason
        self.step = step


class PauseRun(Exception):
    """A step cannot go on yet (e.g. it needs a user's keys); the run pauses, resumable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error_text(exc: BaseException) -> str:
    """An error as an audit row records it."""
    return str(exc) or type(exc).__name__
