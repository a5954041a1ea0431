"""What the other migrations of a file's folder say about the schema.

A migration folder is the unit of history: the files in it run in name order.
Each file is checked with knowledge taken from its folder's other files of the
same dialect, whatever else the run was asked to lint, so that a file linted
alone gets the same findings as in a run over its folder:

- tables declaring ``REFERENCES parent ... ON DELETE CASCADE`` (any file);
- column types, and ``CHECK (col IS NOT NULL)`` constraints and whether they were
  validated (files before it only, since only those have run).

Files in other folders are never consulted; the report's file summary gives how
many files informed each one.
"""

from __future__ import annotations

from collections.abc import Sequence

from duru.migrate.lint.facts import (
    AddColumn,
    AddConstraint,
    AlterColumnType,
    CreateTable,
    DropTable,
    SqlType,
    ValidateConstraint,
)
from duru.migrate.lint.migration import Migration
from duru.migrate.lint.rules import RunContext


def folder_context(migrations: Sequence[Migration], position: int) -> RunContext:
    """Context for `migrations[position]` from the others (sorted in run order)."""
    dialect = migrations[position].dialect
    cascade: dict[str, set[str]] = {}
    types: dict[tuple[str, str], SqlType] = {}
    checks: dict[tuple[str, str], str] = {}
    validated: set[tuple[str, str]] = set()
    used = 0
    for index, migration in enumerate(migrations):
        if index == position or migration.dialect != dialect:
            continue
        used += 1
        for _, create in migration.each(CreateTable):
            for parent in create.cascade_parents:
                cascade.setdefault(parent, set()).add(create.name)
        if index < position:
            _collect_types(migration, types)
            _collect_not_null_checks(migration, checks, validated)
    return RunContext(
        cascade_children={parent: frozenset(names) for parent, names in cascade.items()},
        column_types=types,
        not_null_checks=checks,
        validated_not_null=frozenset(validated),
        files=used,
    )


def _collect_types(migration: Migration, types: dict[tuple[str, str], SqlType]) -> None:
    for statement in migration.statements:
        for fact in statement.facts:
            if isinstance(fact, CreateTable):
                types.update(
                    ((fact.name, name), kind) for name, kind in fact.columns if kind is not None
                )
            elif isinstance(fact, AddColumn) and fact.type is not None:
                types[(fact.table, fact.column)] = fact.type
            elif isinstance(fact, AlterColumnType):
                types[(fact.table, fact.column)] = fact.new_type
            elif isinstance(fact, DropTable):
                for key in [key for key in types if key[0] == fact.name]:
                    del types[key]


def _collect_not_null_checks(
    migration: Migration, checks: dict[tuple[str, str], str], validated: set[tuple[str, str]]
) -> None:
    for statement in migration.statements:
        for fact in statement.facts:
            if isinstance(fact, AddConstraint) and fact.not_null_column is not None:
                if fact.name is not None:
                    checks[(fact.table, fact.name)] = fact.not_null_column
                if not fact.not_valid:
                    validated.add((fact.table, fact.not_null_column))
            elif isinstance(fact, ValidateConstraint):
                column = checks.get((fact.table, fact.name))
                if column is not None:
                    validated.add((fact.table, column))
