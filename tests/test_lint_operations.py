"""The linter judges migrations declared as operations by the operation objects themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from duru.errors import LintFailed, UsageError
from duru.migrate.lint import RULES_BY_ID, lint_source
from duru.migrate.lint.operations import check_migration, lint_operations
from duru.migrate.lint.sqltext import Dialect
from duru.migrate.migration import Migration
from duru.migrate.ops import AddColumn, ChangeType, Operation, RawSQL, RenameColumn

NOT_NULL = AddColumn("notes", "k", "TEXT NOT NULL")
RENAME = RenameColumn("notes", "title", "name")
RETYPE = ChangeType("tasks", "position", "INTEGER", "TEXT", "x", "x")


def _ids(ops: tuple[Operation, ...], dialect: Dialect) -> list[tuple[int, str]]:
    found = lint_operations(ops, dialect)
    return [(f.index, f.rule.id) for f in found]


def test_each_operation_is_judged_on_the_dialect_it_runs_on() -> None:
    ops = (NOT_NULL, RENAME, RETYPE, AddColumn("notes", "j", "TEXT NOT NULL DEFAULT ''"))
    assert _ids(ops, "postgres") == [(0, "DURU206"), (1, "DURU207"), (2, "DURU204")]
    # A device renames in place and changes a type by a rebuild: nothing to fear there.
    assert _ids(ops, "sqlite") == [(0, "DURU206")]


def test_an_operation_and_the_sql_it_stands_for_meet_the_same_rule() -> None:
    (finding,) = lint_operations((NOT_NULL,), "postgres")
    assert finding.rule is RULES_BY_ID["DURU206"]
    sql = lint_source(
        "ALTER TABLE notes ADD COLUMN k text NOT NULL;", Path("m.sql"), dialect="postgres"
    )
    assert "DURU206" in [f.rule for f in sql.findings]
    assert finding.render().startswith(NOT_NULL.describe())


def test_check_migration_refuses_operations_and_lints_only_raw_sql_as_sql() -> None:
    with pytest.raises(UsageError, match="needs a DEFAULT"):
        check_migration(Migration("0002_x", "1", "2", (NOT_NULL,)), "sqlite")
    with pytest.raises(UsageError, match="ExpandColumn"):
        check_migration(Migration("0002_x", "1", "2", (RENAME,)), "postgres")
    check_migration(Migration("0002_x", "1", "2", (RENAME, RETYPE)), "sqlite")
    bad = RawSQL("INSERT OR IGNORE INTO notes SELECT * FROM notes")
    with pytest.raises(LintFailed):
        check_migration(Migration("0002_x", "1", "2", (bad,)), "sqlite")
    # The server runs reverse_sql when it rolls back: it is linted there too.
    undo = RawSQL("SELECT 1", reverse_sql="ALTER TABLE notes ADD COLUMN k text NOT NULL")
    check_migration(Migration("0002_x", "1", "2", (undo,)), "sqlite")
    with pytest.raises(LintFailed):
        check_migration(Migration("0002_x", "1", "2", (undo,)), "postgres")
