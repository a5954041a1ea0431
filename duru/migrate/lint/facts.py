"""What a statement does, in terms the rules reason about, whatever parser read it.

The SQLite reader (sqlglot) and the PostgreSQL reader (pglast) both turn a parsed
statement into a tuple of these facts; the rules never look at a parser's tree.
Table names are lower-cased unless quoted, and lose their schema (``main.notes``
and ``notes`` are the same table to the rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConflictAction = Literal["ignore", "replace", "nothing", "update"]
TransactionAction = Literal["begin", "commit", "rollback", "savepoint", "release", "rollback_to"]
ConstraintKind = Literal["check", "foreign_key", "unique", "primary_key", "exclusion", "not_null"]


@dataclass(frozen=True)
class SqlType:
    """A column type: base name as PostgreSQL spells it internally, and its modifiers."""

    name: str
    modifiers: tuple[int, ...] = ()
    array: bool = False

    def render(self) -> str:
        mods = f"({', '.join(map(str, self.modifiers))})" if self.modifiers else ""
        return f"{self.name}{mods}{'[]' if self.array else ''}"


@dataclass(frozen=True)
class CopyRows:
    """INSERT ... SELECT, or CREATE TABLE ... AS SELECT (`created` then)."""

    target: str
    sources: tuple[str, ...]
    conflict: ConflictAction | None
    star: bool
    target_columns: bool
    filters: tuple[str, ...]
    created: bool = False


@dataclass(frozen=True)
class CreateTable:
    """CREATE TABLE; with `if_not_exists` the table may already exist and hold rows."""

    name: str
    columns: tuple[tuple[str, SqlType | None], ...] = ()
    cascade_parents: tuple[str, ...] = ()
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropTable:
    name: str


@dataclass(frozen=True)
class RenameTable:
    old: str
    new: str


@dataclass(frozen=True)
class Transaction:
    action: TransactionAction


@dataclass(frozen=True)
class Pragma:
    name: str
    value: str | None


@dataclass(frozen=True)
class VacuumInto:
    target: str


@dataclass(frozen=True)
class CreateIndex:
    name: str | None
    table: str
    concurrently: bool


@dataclass(frozen=True)
class DropIndex:
    name: str
    concurrently: bool


@dataclass(frozen=True)
class Concurrently:
    """An operation that PostgreSQL refuses inside a transaction block."""

    what: str


@dataclass(frozen=True)
class AddConstraint:
    table: str
    name: str | None
    kind: ConstraintKind
    not_valid: bool
    not_null_column: str | None = None


@dataclass(frozen=True)
class ValidateConstraint:
    table: str
    name: str


@dataclass(frozen=True)
class AlterColumnType:
    table: str
    column: str
    new_type: SqlType
    using: bool


@dataclass(frozen=True)
class SetNotNull:
    table: str
    column: str


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: str
    type: SqlType | None
    not_null: bool
    has_default: bool


@dataclass(frozen=True)
class RenameColumn:
    table: str
    old: str
    new: str


@dataclass(frozen=True)
class DropColumn:
    table: str
    column: str


@dataclass(frozen=True)
class SetSetting:
    """SET / RESET of a run-time setting; `value` None for RESET or DEFAULT, "?" for a parameter."""

    name: str
    value: str | None
    local: bool = False


@dataclass(frozen=True)
class LocksTable:
    """The statement takes a lock on `table` (an index when `index`) that blocks its users."""

    table: str
    index: bool = False


Fact = (
    CopyRows
    | CreateTable
    | DropTable
    | RenameTable
    | Transaction
    | Pragma
    | VacuumInto
    | CreateIndex
    | DropIndex
    | Concurrently
    | AddConstraint
    | ValidateConstraint
    | AlterColumnType
    | SetNotNull
    | AddColumn
    | RenameColumn
    | DropColumn
    | SetSetting
    | LocksTable
)
