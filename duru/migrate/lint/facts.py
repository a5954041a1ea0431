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
    """INSERT ... SELECT, or CREATE TABLE ... AS SELECT (`created` then).

    `summary` when the SELECT aggregates (GROUP BY, or an aggregate in its select
    list): its rows are computed totals, not copies of source rows.
    """

    target: str
    sources: tuple[str, ...]
    conflict: ConflictAction | None
    star: bool
    target_columns: bool
    filters: tuple[str, ...]
    created: bool = False
    summary: bool = False


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
class CreateView:
    """CREATE [OR REPLACE] VIEW `name` (a view under a renamed table's old name keeps it usable)."""

    name: str


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
    columns: int = 1


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
    using_index: bool = False


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
    """ADD COLUMN. `volatile_default` names the volatile function of its DEFAULT;
    `references` the table of an inline REFERENCES; `key` is "unique" or
    "primary_key" for an inline key; `auto_increment` for serial and identity."""

    table: str
    column: str
    type: SqlType | None
    not_null: bool
    has_default: bool
    volatile_default: str | None = None
    stored_generated: bool = False
    references: str | None = None
    key: str | None = None
    auto_increment: bool = False


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


@dataclass(frozen=True)
class DropNotNull:
    table: str
    column: str


@dataclass(frozen=True)
class DropDatabase:
    name: str


@dataclass(frozen=True)
class Truncate:
    table: str
    cascade: bool


@dataclass(frozen=True)
class Reindex:
    target: str
    concurrently: bool


@dataclass(frozen=True)
class DetachPartition:
    table: str
    partition: str
    concurrently: bool


@dataclass(frozen=True)
class DomainConstraint:
    """CREATE DOMAIN ... CHECK/NOT NULL (`created`), or ALTER DOMAIN ... ADD CONSTRAINT."""

    domain: str
    created: bool
    not_valid: bool = False


@dataclass(frozen=True)
class EnumChange:
    """ALTER TYPE ... ADD VALUE (`placed` when BEFORE/AFTER) or RENAME VALUE (`renamed_from`)."""

    type: str
    value: str
    placed: bool = False
    renamed_from: str | None = None


@dataclass(frozen=True)
class RenameSchema:
    old: str
    new: str


@dataclass(frozen=True)
class ChangeRows:
    """UPDATE or DELETE of `table`; `filtered` when it has a WHERE; `orphans` for a DELETE
    whose WHERE keeps rows without a match elsewhere (NOT EXISTS, NOT IN, LEFT JOIN ... IS NULL)."""

    table: str
    kind: Literal["update", "delete"]
    filtered: bool
    orphans: bool = False


@dataclass(frozen=True)
class JsonColumn:
    """A column of type json (not jsonb), in CREATE TABLE or ADD COLUMN."""

    table: str
    column: str


@dataclass(frozen=True)
class NeedsTimeout:
    """A statement that waits for a lock or may run long (LOCK, COMMENT ON, CREATE TYPE, ...)."""

    what: str


@dataclass(frozen=True)
class DoBlock:
    """A DO block: its statements' facts follow it; `dynamic` counts EXECUTEs nobody can read."""

    statements: int
    dynamic: int


Fact = (
    CopyRows
    | CreateTable
    | DropTable
    | RenameTable
    | CreateView
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
    | DropNotNull
    | DropDatabase
    | Truncate
    | Reindex
    | DetachPartition
    | DomainConstraint
    | EnumChange
    | RenameSchema
    | ChangeRows
    | JsonColumn
    | NeedsTimeout
    | DoBlock
)
