"""What every operation is made of: phases, the Operation base, table and index specs.

Each operation is a frozen dataclass that says *what* a migration does. How it
is done safely is the dialect's job (:mod:`duru.migrate.sqlite.impl` for device
files), the way alembic keeps ``ops.py`` apart from ``ddl/impl.py``. An
operation names its phase (see :class:`Phase`), renders a one-line description,
estimates the rows it touches from a row counter, and returns its inverse from
:meth:`Operation.reverse` (MigrationError when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import TypeAlias

from duru.errors import MigrationError

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
