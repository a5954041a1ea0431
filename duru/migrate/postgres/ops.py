"""Server-only operations, as data, beside the shared ones of :mod:`duru.migrate.ops`.

The shared operations (AddColumn, DropColumn, AddIndex, DropIndex, RawSQL)
run on PostgreSQL too (see :mod:`duru.migrate.postgres.impl`). These say what
only a server needs: constraints added without blocking writes, NOT NULL
without a blocking scan, expand/contract for renames and type changes, and
moving a plaintext column into its sealed (encrypted) column, and creating one of the
server's own tables exactly as the layout (:mod:`duru.remote.layout`) makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from duru.errors import UsageError
from duru.migrate.ops import Operation, Phase
from duru.model import Entity, Field, Kind, entity
from duru.remote.layout import ServerTable, server_tables

VALUE = "{value}"


@dataclass(frozen=True)
class AddConstraint(Operation):
    """Add a CHECK or FOREIGN KEY: ``NOT VALID`` (instant), then ``VALIDATE`` as its own step.

    ``definition`` is the constraint after its name, e.g. ``CHECK (version >= 0)``
    or ``FOREIGN KEY (user_id, note_id) REFERENCES notes (user_id, id)``.
    """

    table: str
    name: str
    definition: str

    def describe(self) -> str:
        return f"add constraint {self.name} on {self.table}: {self.definition}"

    def reverse(self) -> Operation:
        return DropConstraint(self.table, self.name, self.definition)


@dataclass(frozen=True)
class DropConstraint(Operation):
    """Drop a constraint; reversing re-adds it (the safe way) from ``definition``."""

    table: str
    name: str
    definition: str | None = None

    def describe(self) -> str:
        return f"drop constraint {self.name} on {self.table}"

    def reverse(self) -> Operation:
        if self.definition is None:
            raise self._irreversible("the constraint's definition was not given")
        return AddConstraint(self.table, self.name, self.definition)


@dataclass(frozen=True)
class CreateServerTable(Operation):
    """Create the layout's table ``table`` (columns, keys, index comments, row level
    security) as ``duru serve`` makes it on a new database; reversing drops it.

    For a table no earlier version had: it starts empty, so nothing is locked for long.
    The server role's grants follow when ``duru serve`` starts (it re-grants every table).
    """

    table: str
    phase: Phase = Phase.BRIDGE

    def __post_init__(self) -> None:
        layout_table(self.table)

    def describe(self) -> str:
        return f"create table {self.table} as the server layout defines it"

    def reverse(self) -> Operation:
        return DropServerTable(self.table)


@dataclass(frozen=True)
class DropServerTable(Operation):
    """Drop the layout's table ``table`` and what it holds (the undo of a create)."""

    table: str
    phase: Phase = Phase.CLEANUP

    def __post_init__(self) -> None:
        layout_table(self.table)

    def describe(self) -> str:
        return f"drop table {self.table} and its rows"

    def reverse(self) -> Operation:
        return CreateServerTable(self.table)


def layout_table(name: str) -> ServerTable:
    """The server layout's table ``name``; UsageError when the layout has none."""
    found = next((t for t in server_tables() if t.name == name), None)
    if found is None:
        raise UsageError(f"{name} is not a table of the server layout")
    return found


@dataclass(frozen=True)
class SetNotNull(Operation):
    """Make a column NOT NULL without a scan under an exclusive lock.

    Steps: ``CHECK (col IS NOT NULL) NOT VALID``; ``VALIDATE`` (a scan that
    lets writes through); ``SET NOT NULL`` (PostgreSQL proves it from the valid
    check, no scan) and drop the check.
    """

    table: str
    column: str

    def describe(self) -> str:
        return f"set {self.table}.{self.column} not null"

    def reverse(self) -> Operation:
        return DropNotNull(self.table, self.column)


@dataclass(frozen=True)
class DropNotNull(Operation):
    """Let a column hold NULL (metadata only)."""

    table: str
    column: str

    def describe(self) -> str:
        return f"let {self.table}.{self.column} be null"

    def reverse(self) -> Operation:
        return SetNotNull(self.table, self.column)


@dataclass(frozen=True)
class ExpandColumn(Operation):
    """The expand half of a rename or a type change: both columns live, kept in step.

    Adds ``new_column`` of ``new_type`` and a trigger that copies each client
    write of one column into the other (``up`` converts old to new, ``down``
    new to old; SQL expressions over ``{value}``), so clients of the previous
    release (old column) and of the new one (new column) both read and write
    correctly; then backfills existing rows in chunks. A rename is an expand
    with the same type and the default identity conversions. Contract with
    :class:`ContractColumn` in a later step, once no client uses the old column.
    The trigger tells the writer by which column is NULL on INSERT, so the old
    column must have no DEFAULT while both live.
    """

    table: str
    column: str
    new_column: str
    new_type: str
    up: str = VALUE
    down: str = VALUE
    phase: Phase = Phase.BRIDGE

    def __post_init__(self) -> None:
        if VALUE not in self.up or VALUE not in self.down:
            raise UsageError(f"{self.describe()}: up and down must use {VALUE}")

    def describe(self) -> str:
        if self.up == VALUE and self.down == VALUE:
            return f"expand {self.table}.{self.column} into {self.new_column} (rename)"
        return f"expand {self.table}.{self.column} into {self.new_column} {self.new_type}"

    def reverse(self) -> Operation:
        return ContractColumn(self, keep="old")


@dataclass(frozen=True)
class ContractColumn(Operation):
    """The contract half: drop the sync trigger and the column not kept.

    ``keep="new"`` finishes the change (the old column goes, snapshotted first
    so a rollback can restore it); ``keep="old"`` abandons it.
    """

    expansion: ExpandColumn
    keep: Literal["new", "old"] = "new"
    phase: Phase = Phase.CLEANUP

    @property
    def dropped(self) -> str:
        e = self.expansion
        return e.column if self.keep == "new" else e.new_column

    def describe(self) -> str:
        return f"contract {self.expansion.table}: drop {self.dropped} and its sync trigger"


@dataclass(frozen=True)
class SealColumn(Operation):
    """Expand and backfill for moving a plaintext server column into its sealed column.

    For a secret text field the server wrongly keeps as plaintext (``notes.title``
    beside or instead of ``title_enc``). Expand adds the bytea column and a
    trigger; the backfill runs on the client side: the runner reads plaintext
    in chunks, seals each value with the owner's keys (bound to entity, field,
    user and row) and writes the ciphertexts back; then every value is opened
    and compared with its plaintext. The server never holds a key. Contract
    with :class:`DropPlaintext`.
    """

    table: str
    field: str
    phase: Phase = Phase.BRIDGE

    def __post_init__(self) -> None:
        seal_target(self.table, self.field)

    def describe(self) -> str:
        f = seal_target(self.table, self.field).field
        return f"seal {self.table}.{f.name} into {f.remote} (client-side encryption)"


@dataclass(frozen=True)
class DropPlaintext(Operation):
    """The contract of :class:`SealColumn`: the sealed column NOT NULL, the plaintext dropped.

    Run it once no client of the previous release is left: its first change
    (a NOT VALID check) refuses rows written without the sealed column. It
    pauses while rows of users whose keys the run does not hold are unsealed.
    """

    table: str
    field: str
    phase: Phase = Phase.CLEANUP

    def __post_init__(self) -> None:
        seal_target(self.table, self.field)

    def describe(self) -> str:
        f = seal_target(self.table, self.field).field
        return f"drop plaintext {self.table}.{f.name} (kept sealed in {f.remote})"


@dataclass(frozen=True)
class SealTarget:
    """Where a sealed field lives: its entity, field, plaintext and sealed columns."""

    entity: Entity
    field: Field

    @property
    def table(self) -> str:
        return self.entity.table

    @property
    def plain(self) -> str:
        return self.field.name

    @property
    def sealed(self) -> str:
        assert self.field.remote is not None
        return self.field.remote


def seal_target(table: str, field: str) -> SealTarget:
    """The model's sealed field ``field`` of ``table``; UsageError when it is not one."""
    e = entity(table)
    f = e.field(field)
    if not f.secret or f.remote is None or f.kind is not Kind.TEXT:
        raise UsageError(
            f"{table}.{field} is not a secret text field with its own sealed column in the model"
        )
    return SealTarget(e, f)
