"""Migration operations as data: what changes, how to describe it, how to reverse it.

Each operation is a frozen dataclass that says *what* a migration does. How it
is done safely is the dialect's job (:mod:`duru.migrate.sqlite.impl` for device
files, :mod:`duru.migrate.postgres.impl` on the server), the way alembic keeps
``ops.py`` apart from ``ddl/impl.py``. An operation names its phase (see
:class:`Phase`), renders a one-line description, estimates the rows it touches
from a row counter, and returns its inverse from :meth:`Operation.reverse`
(MigrationError when there is none).

:mod:`.base` holds the base and the specs, :mod:`.schema` the schema
operations, :mod:`.data` the data operations.
"""

from __future__ import annotations

from duru.migrate.ops.base import (
    Generated,
    IndexSpec,
    Operation,
    Phase,
    RowCounter,
    TableSpec,
    quote,
)
from duru.migrate.ops.data import (
    RawSQL,
    Rejected,
    RowMapper,
    SetMeta,
    StreamData,
    StreamDriver,
    TransformData,
)
from duru.migrate.ops.schema import (
    AddColumn,
    AddForeignKey,
    AddIndex,
    AddSearch,
    ChangeType,
    CreateTable,
    DropColumn,
    DropForeignKey,
    DropIndex,
    DropTable,
    RebuildTable,
    RenameColumn,
    RenameTable,
)

__all__ = [
    "AddColumn",
    "AddForeignKey",
    "AddIndex",
    "AddSearch",
    "ChangeType",
    "CreateTable",
    "DropColumn",
    "DropForeignKey",
    "DropIndex",
    "DropTable",
    "Generated",
    "IndexSpec",
    "Operation",
    "Phase",
    "RawSQL",
    "RebuildTable",
    "Rejected",
    "RenameColumn",
    "RenameTable",
    "RowCounter",
    "RowMapper",
    "SetMeta",
    "StreamData",
    "StreamDriver",
    "TableSpec",
    "TransformData",
    "quote",
]
