"""What a lint rule is and what it is given."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from duru.migrate.lint.facts import SqlType
from duru.migrate.lint.migration import Migration, Statement
from duru.migrate.lint.settings import LintSettings
from duru.migrate.lint.sqltext import Dialect
from duru.migrate.lint.timeline import Timeline

if TYPE_CHECKING:
    from duru.migrate.ops import Operation

Severity = Literal["error", "warning"]
BOTH: frozenset[Dialect] = frozenset({"sqlite", "postgres"})
SQLITE: frozenset[Dialect] = frozenset({"sqlite"})
POSTGRES: frozenset[Dialect] = frozenset({"postgres"})


@dataclass(frozen=True)
class RunContext:
    """What the other files of the same lint run say about the schema (same dialect).

    `cascade_children` maps a parent table to the tables that declare
    ``REFERENCES parent ... ON DELETE CASCADE`` in any other file; `column_types`
    holds the column types declared by the files that run before this one;
    `not_null_checks` maps (table, constraint) to the column of each earlier
    ``CHECK (col IS NOT NULL)``, and `validated_not_null` holds the (table, column)
    pairs such a check was validated for. `files` counts the files consulted.
    """

    cascade_children: Mapping[str, frozenset[str]] = field(default_factory=dict)
    column_types: Mapping[tuple[str, str], SqlType] = field(default_factory=dict)
    not_null_checks: Mapping[tuple[str, str], str] = field(default_factory=dict)
    validated_not_null: frozenset[tuple[str, str]] = frozenset()
    files: int = 0


@dataclass(frozen=True)
class Check:
    """Everything a rule may look at for one migration."""

    migration: Migration
    timeline: Timeline
    context: RunContext
    settings: LintSettings = field(default_factory=LintSettings)


@dataclass(frozen=True)
class Hit:
    """A rule matched `statement`; `severity` overrides the rule's when it is less sure."""

    statement: Statement
    message: str
    severity: Severity | None = None


@dataclass(frozen=True)
class Rule:
    """A rule: id, short name, default severity, dialects, why it matters, and the fix.

    `check` is None for the rules the engine itself reports (parse errors, bad
    suppressions). `operations` judges a migration declared as operations
    (:mod:`duru.migrate.ops`) one operation at a time, on the dialect it runs
    on, without SQL: it yields what is wrong with the operation (see
    `duru.migrate.lint.operations`).
    """

    id: str
    name: str
    severity: Severity
    dialects: frozenset[Dialect]
    why: str
    fix: str
    check: Callable[[Check], Iterator[Hit]] | None = None
    operations: Callable[[Operation, Dialect], Iterator[str]] | None = None


def existing_table(check: Check, statement: Statement, table: str) -> bool:
    """True when `table` was not created earlier in this migration (so it may hold rows)."""
    return table not in check.timeline.before(statement.index).new_tables
