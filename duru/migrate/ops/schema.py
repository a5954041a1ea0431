"""Schema operations: tables, columns, indexes and foreign keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from duru.migrate.ops.base import (
    IndexSpec,
    Operation,
    Phase,
    RowCounter,
    TableSpec,
    _frozen,
    quote,
)
from duru.migrate.ops.data import RawSQL

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
