"""Lint a migration declared as operations: the rules judge the operation objects themselves.

Where a migration is written as operations (:mod:`duru.migrate.ops`), no SQL
is rendered and parsed again: each rule with an operation check
(:attr:`Rule.operations <duru.migrate.lint.rules.base.Rule>`) looks at every
operation, on the dialect the migration runs on, under the same rule id,
name, why and fix as its SQL check. SQL is read only where only SQL exists:
a :class:`~duru.migrate.ops.RawSQL` operation's statements are linted as a
``.sql`` file of their own, and so is its ``reverse_sql`` on the server,
where a rollback runs it (a device rolls back by its backup image).

Both dialects' plans call :func:`check_migration` before building steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from duru.errors import UsageError
from duru.migrate.lint.rules import RULES, Rule
from duru.migrate.lint.sqltext import Dialect
from duru.migrate.ops import Operation, RawSQL

if TYPE_CHECKING:
    from duru.migrate.migration import Migration


@dataclass(frozen=True)
class OperationFinding:
    """A rule matched operation number ``index`` of a migration."""

    rule: Rule
    index: int
    operation: Operation
    message: str

    def render(self) -> str:
        return f"{self.operation.describe()}: {self.message}"


def lint_operations(operations: Sequence[Operation], dialect: Dialect) -> list[OperationFinding]:
    """What the rules find in ``operations`` as declared, in order (raw SQL excepted)."""
    found: list[OperationFinding] = []
    for index, op in enumerate(operations):
        for rule in RULES:
            if rule.operations is None:
                continue
            found += [OperationFinding(rule, index, op, m) for m in rule.operations(op, dialect)]
    return found


def check_migration(migration: Migration, dialect: Dialect) -> None:
    """Refuse a migration the rules reject, before any step of it is planned.

    Raises UsageError for an operation an error-severity rule rejects (the
    caller declared something unsafe; the message names the operation) and
    LintFailed for raw SQL with error-severity findings.
    """
    for finding in lint_operations(migration.ops, dialect):
        if finding.rule.severity == "error":
            raise UsageError(finding.render())
    for index, op in enumerate(migration.ops):
        if isinstance(op, RawSQL):
            _lint_sql(migration, index, op, dialect)


def _lint_sql(migration: Migration, index: int, op: RawSQL, dialect: Dialect) -> None:
    from duru.migrate.lint.engine import lint_source  # the SQL readers are heavy: load on use

    texts = [op.sql]
    if dialect == "postgres" and op.reverse_sql is not None:
        texts.append(op.reverse_sql)
    for text in texts:
        path = Path(f"{migration.id}/{index:02d}.sql")
        lint_source(text, path, dialect=dialect).raise_for_errors()
