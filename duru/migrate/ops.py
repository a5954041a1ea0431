"""Migration operations as data: what changes, how to describe it, how to reverse it.

Each operation is a frozen dataclass that says *what* a migration does. How it
is done safely is the dialect's job (:mod:`duru.migrate.sqlite.impl` for device
files), the way alembic keeps ``ops.py`` apart from ``ddl/impl.py``. An
operation names its phase (see :class:`Phase`), renders a one-line description,
estimates the rows it touches from a row counter, and returns its inverse from
:meth:`Operation.reverse` (MigrationError when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias

from duru.errors import MigrationError
from duru.model import Row

RowCounter: TypeAlias = Callable[[str], int]


class Phase(IntEnum):
    """The phases of a run, in the order they run."""

    PREPARE = 1  # preflight and a verified backup
    BRIDGE = 2  # shadow tables, write fences, the transformation tried on a sample
    MIGRATE = 3  # chunked copies with a rollback point per chunk, swaps
    CLEANUP = 4  # drop what the bridge left, ANALYZE, report

    @property
    def label(self) -> str:
        return self.name.lower()


class Generated(Enum):
    """A value made when the operation runs, not when it is written."""

    UUID = "a new uuid"


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


class Operation:
    """Base of every operation: a phase, a description, an inverse and a row estimate."""

    phase: Phase = Phase.MIGRATE

    def describe(self) -> str:
        raise NotImplementedError

    def reverse(self) -> Operation:
        """The operation that undoes this one; MigrationError when none can."""
        raise MigrationError(f"cannot reverse: {self.describe()}")

    def estimate(self, count: RowCounter) -> int | None:
        """Rows this operation reads or writes, from ``count(table)``; None for DDL only."""
        return None

    def _irreversible(self, why: str) -> MigrationError:
        return MigrationError(f"cannot reverse {self.describe()}: {why}")


@dataclass(frozen=True)
class IndexSpec:
    """An index as data; :meth:`sql` renders it (optionally under another name or table)."""

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str | None = None

    def sql(self, *, name: str | None = None, table: str | None = None) -> str:
        cols = ", ".join(quote(c) for c in self.columns)
        unique = "UNIQUE " if self.unique else ""
        out = (
            f"CREATE {unique}INDEX {quote(name or self.name)} "
            f"ON {quote(table or self.table)} ({cols})"
        )
        return out + (f" WHERE {self.where}" if self.where else "")


@dataclass(frozen=True)
class TableSpec:
    """A table as a rebuild needs it: DDL, stored columns, and what hangs off it.

    ``create`` starts with ``CREATE TABLE "<name>"`` so that :meth:`create_as`
    can build the same table under a temporary name. ``after`` holds the
    statements that follow the indexes (FTS tables and triggers); ``fts`` names
    the external-content FTS tables that go with the table, and ``fill`` the
    statements that index its rows once they are in (the same rows the
    triggers would index: FTS5's own 'rebuild' would index the trash too).
    ``rowid_alias`` is the table's ``INTEGER PRIMARY KEY`` column, if any.
    """

    name: str
    create: str
    columns: tuple[str, ...]
    key: str | None = None
    rowid_alias: str | None = None
    indexes: tuple[IndexSpec, ...] = ()
    after: tuple[str, ...] = ()
    fts: tuple[str, ...] = ()
    fill: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.create.startswith(self._prefix(self.name)):
            raise ValueError(f"{self.name}: create must start with {self._prefix(self.name)!r}")

    def create_as(self, name: str) -> str:
        """The CREATE TABLE statement for this table under ``name``."""
        return self._prefix(name) + self.create[len(self._prefix(self.name)) :]

    @staticmethod
    def _prefix(name: str) -> str:
        return f"CREATE TABLE {quote(name)} ("


def quote(name: str) -> str:
    """Quote an identifier (SQLite and PostgreSQL agree on double quotes)."""
    return '"' + name.replace('"', '""') + '"'


# -- tables -------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTable(Operation):
    """Create a table with its indexes, FTS tables and triggers."""

    spec: TableSpec
    phase: Phase = Phase.BRIDGE

    def describe(self) -> str:
        return f"create table {self.spec.name}"

    def reverse(self) -> Operation:
        return DropTable(self.spec.name, spec=self.spec, phase=self.phase)


@dataclass(frozen=True)
class DropTable(Operation):
    """Drop a table. Reversing it re-creates the table empty (from ``spec``).

    ``if_exists``: a table the file may not have (optional tables of old files).
    """

    table: str
    spec: TableSpec | None = None
    phase: Phase = Phase.CLEANUP
    if_exists: bool = False

    def describe(self) -> str:
        return f"drop table {self.table}" + (" if it exists" if self.if_exists else "")

    def reverse(self) -> Operation:
        if self.spec is None:
            raise self._irreversible("the table's definition was not given")
        return CreateTable(self.spec, phase=self.phase)

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.table)


@dataclass(frozen=True)
class RenameTable(Operation):
    """Rename a table (references in other tables follow it).

    ``if_exists``: skip a table the file may not have.
    """

    table: str
    to: str
    phase: Phase = Phase.BRIDGE
    if_exists: bool = False

    def describe(self) -> str:
        tail = " (if it exists)" if self.if_exists else ""
        return f"rename table {self.table} to {self.to}{tail}"

    def reverse(self) -> Operation:
        return RenameTable(self.to, self.table, phase=self.phase, if_exists=self.if_exists)


@dataclass(frozen=True)
class AddSearch(Operation):
    """Give a table its full-text search: FTS table, triggers, and its rows indexed.

    A bulk load is faster without the triggers, so a migration that fills a
    new searchable table adds the search after the rows are in.
    """

    spec: TableSpec

    def describe(self) -> str:
        return f"add full-text search to {self.spec.name} ({', '.join(self.spec.fts)})"

    def reverse(self) -> Operation:
        return RawSQL(
            ";\n".join(f"DROP TABLE {quote(t)}" for t in self.spec.fts),
            why=f"undo: {self.describe()}",
        )

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.spec.name)


# -- columns ------------------------------------------------------------------


@dataclass(frozen=True)
class AddColumn(Operation):
    """Add a column; ``definition`` is everything after the name (type, NOT NULL, DEFAULT)."""

    table: str
    column: str
    definition: str

    def describe(self) -> str:
        return f"add column {self.table}.{self.column} {self.definition}"

    def reverse(self) -> Operation:
        return DropColumn(self.table, self.column, definition=self.definition)


@dataclass(frozen=True)
class DropColumn(Operation):
    """Drop a column; reversing re-adds it empty (from ``definition``)."""

    table: str
    column: str
    definition: str | None = None

    def describe(self) -> str:
        return f"drop column {self.table}.{self.column}"

    def reverse(self) -> Operation:
        if self.definition is None:
            raise self._irreversible("the column's definition was not given")
        return AddColumn(self.table, self.column, self.definition)


@dataclass(frozen=True)
class RenameColumn(Operation):
    """Rename a column (indexes, triggers and references follow it)."""

    table: str
    column: str
    to: str

    def describe(self) -> str:
        return f"rename column {self.table}.{self.column} to {self.to}"

    def reverse(self) -> Operation:
        return RenameColumn(self.table, self.to, self.column)


# -- indexes ------------------------------------------------------------------


@dataclass(frozen=True)
class AddIndex(Operation):
    """Create an index."""

    index: IndexSpec

    def describe(self) -> str:
        kind = "unique index" if self.index.unique else "index"
        cols = ", ".join(self.index.columns)
        return f"add {kind} {self.index.name} on {self.index.table} ({cols})"

    def reverse(self) -> Operation:
        return DropIndex(self.index.name, index=self.index)

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.index.table)


@dataclass(frozen=True)
class DropIndex(Operation):
    """Drop an index; reversing re-creates it from ``index``."""

    name: str
    index: IndexSpec | None = None

    def describe(self) -> str:
        return f"drop index {self.name}"

    def reverse(self) -> Operation:
        if self.index is None:
            raise self._irreversible("the index's definition was not given")
        return AddIndex(self.index)


# -- table rebuilds -----------------------------------------------------------


@dataclass(frozen=True)
class RebuildTable(Operation):
    """Move a table's rows into a new definition (``spec``), chunk by chunk.

    ``select`` maps a new column to an SQL expression over the old row
    (default: the old column of the same name; new columns absent from the old
    table take their DEFAULT). Expressions must be deterministic: each chunk is
    compared with its source by re-evaluating them. Rows the new definition
    rejects go to quarantine with the reason. ``rejects_are_failures``: count
    those rows against the run's error budget (on unless rejections are the
    point, as when orphans are expected).
    """

    spec: TableSpec
    select: Mapping[str, str] = field(default_factory=_frozen)
    source: TableSpec | None = None
    rejects_are_failures: bool = True
    why: str = ""

    def describe(self) -> str:
        return f"rebuild table {self.spec.name}" + (f" ({self.why})" if self.why else "")

    def reverse(self) -> Operation:
        if self.source is None:
            raise self._irreversible("the table's previous definition was not given")
        return RebuildTable(self.source, source=self.spec, why=f"undo: {self.why}".rstrip(": "))

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.spec.name)


@dataclass(frozen=True)
class ChangeType(Operation):
    """Change a column's type, converting each value with ``up`` (and back with ``down``).

    ``up`` and ``down`` are SQL expressions over the old row, e.g.
    ``CAST("due" AS INTEGER) * 1000``. On SQLite this is a table rebuild into
    ``spec`` (the table as it is afterwards); ``source`` is the table before.
    """

    table: str
    column: str
    from_type: str
    to_type: str
    up: str
    down: str
    spec: TableSpec | None = None
    source: TableSpec | None = None
    rejects_are_failures: bool = True

    def describe(self) -> str:
        return f"change type of {self.table}.{self.column} from {self.from_type} to {self.to_type}"

    def reverse(self) -> Operation:
        return ChangeType(
            self.table,
            self.column,
            self.to_type,
            self.from_type,
            up=self.down,
            down=self.up,
            spec=self.source,
            source=self.spec,
            rejects_are_failures=self.rejects_are_failures,
        )

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.table)


@dataclass(frozen=True)
class AddForeignKey(Operation):
    """Make ``table.column`` reference ``parent(parent_column)``.

    On SQLite a table rebuild into ``spec``; rows whose parent does not exist
    are quarantined, and by default they count against the error budget.
    """

    table: str
    column: str
    parent: str
    parent_column: str = "id"
    on_delete: str | None = None
    spec: TableSpec | None = None
    source: TableSpec | None = None
    rejects_are_failures: bool = True

    def describe(self) -> str:
        tail = f" on delete {self.on_delete.lower()}" if self.on_delete else ""
        return (
            f"add foreign key {self.table}.{self.column} -> "
            f"{self.parent}.{self.parent_column}{tail}"
        )

    def reverse(self) -> Operation:
        return DropForeignKey(
            self.table,
            self.column,
            self.parent,
            self.parent_column,
            spec=self.source,
            source=self.spec,
        )

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.table)


@dataclass(frozen=True)
class DropForeignKey(Operation):
    """Stop ``table.column`` referencing ``parent``; on SQLite a rebuild into ``spec``."""

    table: str
    column: str
    parent: str
    parent_column: str = "id"
    spec: TableSpec | None = None
    source: TableSpec | None = None

    def describe(self) -> str:
        return f"drop foreign key {self.table}.{self.column} -> {self.parent}.{self.parent_column}"

    def reverse(self) -> Operation:
        return AddForeignKey(
            self.table,
            self.column,
            self.parent,
            self.parent_column,
            spec=self.source,
            source=self.spec,
        )

    def estimate(self, count: RowCounter) -> int | None:
        return count(self.table)


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
