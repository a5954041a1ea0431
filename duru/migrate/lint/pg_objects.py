"""PostgreSQL readers for statements on objects other than a table's columns.

Databases, domains, enum types, schemas, REINDEX, VACUUM, LOCK, COMMENT ON and
CREATE TYPE. Each reader takes a pglast node (as Any, see `pg_reader`) and
yields facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pglast import ast, enums

from duru.migrate.lint.facts import (
    DomainConstraint,
    DropDatabase,
    EnumChange,
    Fact,
    LocksTable,
    NeedsTimeout,
    Reindex,
    RenameSchema,
)

_DOMAIN_CHECKS = {enums.ConstrType.CONSTR_CHECK, enums.ConstrType.CONSTR_NOTNULL}


def _names(names: Any) -> str:
    return ".".join(str(name.sval) for name in names or () if isinstance(name, ast.String))


def _dropdb(node: Any) -> Iterator[Fact]:
    yield DropDatabase(str(node.dbname))


def _create_domain(node: Any) -> Iterator[Fact]:
    if any(c.contype in _DOMAIN_CHECKS for c in node.constraints or ()):
        yield DomainConstraint(_names(node.domainname), created=True)
    yield NeedsTimeout("CREATE DOMAIN")


def _alter_domain(node: Any) -> Iterator[Fact]:
    # subtype "C" is ADD CONSTRAINT, "O" SET NOT NULL; both check every column using it.
    if node.subtype == "C" and isinstance(node.def_, ast.Constraint):
        yield DomainConstraint(
            _names(node.typeName), created=False, not_valid=bool(node.def_.skip_validation)
        )
    elif node.subtype == "O":
        yield DomainConstraint(_names(node.typeName), created=False)
    yield NeedsTimeout("ALTER DOMAIN")


def _alter_enum(node: Any) -> Iterator[Fact]:
    name = _names(node.typeName)
    if node.oldVal:
        yield EnumChange(name, str(node.newVal), renamed_from=str(node.oldVal))
    elif node.newVal:
        yield EnumChange(name, str(node.newVal), placed=bool(node.newValNeighbor))
    yield NeedsTimeout("ALTER TYPE")


def _create_type(node: Any) -> Iterator[Fact]:
    yield NeedsTimeout("CREATE TYPE")


def _reindex(node: Any) -> Iterator[Fact]:
    concurrently = any(param.defname == "concurrently" for param in node.params or ())
    target = str(node.relation.relname) if node.relation is not None else str(node.name or "")
    yield Reindex(target, concurrently)
    if not concurrently:
        yield NeedsTimeout("REINDEX")
        if node.relation is not None:
            yield LocksTable(
                target, index=node.kind == enums.ReindexObjectType.REINDEX_OBJECT_INDEX
            )


def _vacuum(node: Any) -> Iterator[Fact]:
    options = {str(option.defname).lower() for option in node.options or ()}
    if "full" not in options:
        return
    yield NeedsTimeout("VACUUM FULL")
    for relation in node.rels or ():
        if isinstance(relation, ast.VacuumRelation) and relation.relation is not None:
            yield LocksTable(str(relation.relation.relname))


def _lock(node: Any) -> Iterator[Fact]:
    yield NeedsTimeout("LOCK TABLE")
    yield from (LocksTable(str(relation.relname)) for relation in node.relations or ())


def _comment(node: Any) -> Iterator[Fact]:
    yield NeedsTimeout("COMMENT ON")
    target = node.object
    if node.objtype in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_COLUMN):
        names = [str(n.sval) for n in target or () if isinstance(n, ast.String)]
        if node.objtype == enums.ObjectType.OBJECT_COLUMN:
            names = names[:-1]
        if names:
            yield LocksTable(names[-1])


def _rename_schema(node: Any) -> Iterator[Fact]:
    yield RenameSchema(str(node.subname), str(node.newname))


OBJECT_READERS: dict[type[Any], Callable[[Any], Iterator[Fact]]] = {
    ast.AlterDomainStmt: _alter_domain,
    ast.AlterEnumStmt: _alter_enum,
    ast.CommentStmt: _comment,
    ast.CompositeTypeStmt: _create_type,
    ast.CreateDomainStmt: _create_domain,
    ast.CreateEnumStmt: _create_type,
    ast.CreateRangeStmt: _create_type,
    ast.DropdbStmt: _dropdb,
    ast.LockStmt: _lock,
    ast.ReindexStmt: _reindex,
    ast.VacuumStmt: _vacuum,
}


def rename_schema(node: Any) -> Iterator[Fact]:
    """The RenameStmt reader's case for ALTER SCHEMA ... RENAME TO."""
    if node.renameType == enums.ObjectType.OBJECT_SCHEMA:
        yield from _rename_schema(node)
