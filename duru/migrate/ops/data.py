"""Data operations: transforms, streams, raw SQL and metadata stamps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from duru.migrate.ops.base import Generated, Operation, Phase, RowCounter
from duru.model import Row

# -- data ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A source row a mapper will not place, and why; it goes to quarantine."""

    key: str | None
    reason: str
    row: Row
    table: str | None = None  # the table named in quarantine; default: the source table


class RowMapper(Protocol):
    """Maps a chunk of source rows to target rows (or rejections), one outcome per row.

    ``conn`` is the migration's connection, inside the chunk's transaction:
    a mapper may read rows placed by earlier operations (parents) through it.
    The outcome list must be as long as ``rows`` and in the same order.
    """

    name: str

    def map_rows(self, conn: object, rows: Sequence[Row]) -> Sequence[Row | Rejected]: ...


@dataclass(frozen=True)
class TransformData(Operation):
    """Copy rows of ``source`` into ``target`` through a Python mapper, chunk by chunk.

    Source rows are read in rowid order with their columns named (never
    ``SELECT *``); each chunk's output is written, read back by ``key`` and
    compared with what the mapper produced. ``quarantine_source`` is the
    ``source`` recorded with rejected rows (default: the migration).
    """

    source: str
    target: str
    mapper: RowMapper
    key: str = "id"
    backward: RowMapper | None = None
    rejects_are_failures: bool = True
    quarantine_source: str | None = None

    def describe(self) -> str:
        return f"transform {self.source} into {self.target} ({self.mapper.name})"

    def reverse(self) -> Operation:
        if self.backward is None:
            raise self._irreversible("no backward mapper was given")
        return TransformData(
            self.target,
            self.source,
            self.backward,
            backward=self.mapper,
            rejects_are_failures=self.rejects_are_failures,
        )

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.source)


class StreamDriver(Protocol):
    """Moves rows by driving its own loop, checkpointing as it goes (see StreamData).

    ``tables`` are the source tables it reads (fenced while it runs). The
    methods receive the engine's step context and checkpoint objects
    (:mod:`duru.migrate.sqlite.steps`); typed loosely here so that operations stay
    free of the engine's machinery.
    """

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    def total(self, ctx: Any) -> int: ...

    def sample(self, ctx: Any, rows: int) -> Any: ...

    def run(self, ctx: Any, checkpoint: Any) -> Any: ...


@dataclass(frozen=True)
class StreamData(Operation):
    """Move rows with a driver that reads and writes in one deterministic stream.

    For transformations whose rows depend on each other (trees written
    parents first, one row chosen among several), which a row-by-row mapper
    cannot express. The engine commits the stream at checkpoints (rollback
    points) and, after a crash, has the driver replay it up to the last one
    without writing again.
    """

    driver: StreamDriver
    targets: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"stream {', '.join(self.driver.tables)} through {self.driver.name}"

    def estimate(self, count: RowCounter) -> int | None:
        return None


@dataclass(frozen=True)
class RawSQL(Operation):
    """SQL the declarative operations cannot say; linted before it may run."""

    sql: str
    reverse_sql: str | None = None
    phase: Phase = Phase.MIGRATE
    why: str = ""

    def describe(self) -> str:
        first = " ".join(self.sql.split())
        text = first if len(first) <= 60 else first[:57] + "..."
        return f"run SQL: {text}" + (f" ({self.why})" if self.why else "")

    def reverse(self) -> Operation:
        if self.reverse_sql is None:
            raise self._irreversible("no reverse_sql was given")
        return RawSQL(self.reverse_sql, self.sql, phase=self.phase, why=f"undo: {self.why}")


@dataclass(frozen=True)
class SetMeta(Operation):
    """Set a key of ``duru_meta``; a Generated value is made once, when missing."""

    key: str
    value: str | Generated

    def describe(self) -> str:
        shown = self.value.value if isinstance(self.value, Generated) else repr(self.value)
        return f"set {self.key} to {shown}"
