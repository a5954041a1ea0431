"""Rules on ALTER TABLE changes to tables that already hold rows and serve clients."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate import ops
from duru.migrate.lint.facts import (
    AddColumn,
    AddConstraint,
    CreateView,
    DropColumn,
    RenameColumn,
    RenameTable,
    SetNotNull,
    ValidateConstraint,
)
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import BOTH, POSTGRES, Check, Hit, Rule, existing_table
from duru.migrate.lint.sqltext import Dialect


def _existing(check: Check, statement: Statement, table: str) -> bool:
    return existing_table(check, statement, table)


def _constraint_without_not_valid(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(AddConstraint):
        if fact.kind not in ("check", "foreign_key") or fact.not_valid:
            continue
        if _existing(check, statement, fact.table):
            kind = "CHECK" if fact.kind == "check" else "FOREIGN KEY"
            yield Hit(statement, f"{kind} on {fact.table} is validated under a blocking lock")


def _set_not_null(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(SetNotNull):
        if not _existing(check, statement, fact.table):
            continue
        if _validated_not_null_check(check, statement, fact):
            continue
        yield Hit(
            statement,
            f"SET NOT NULL on {fact.table}.{fact.column} scans the table under an ACCESS "
            "EXCLUSIVE lock",
        )


def _validated_not_null_check(check: Check, until: Statement, fact: SetNotNull) -> bool:
    """A CHECK (column IS NOT NULL) on the table, validated before `until`.

    The check may come from an earlier migration of the folder (the two-step
    pattern: add it NOT VALID in one file, validate and SET NOT NULL in the next).
    """
    if (fact.table, fact.column) in check.context.validated_not_null:
        return True
    pending: set[str | None] = {
        name
        for (table, name), column in check.context.not_null_checks.items()
        if table == fact.table and column == fact.column
    }
    for statement in check.migration.statements[: until.index]:
        for other in statement.facts:
            if isinstance(other, AddConstraint) and other.table == fact.table:
                if other.not_null_column == fact.column:
                    if not other.not_valid:
                        return True
                    pending.add(other.name)
            elif isinstance(other, ValidateConstraint) and other.table == fact.table:
                if other.name in pending:
                    return True
    return False


def _add_not_null_without_default(check: Check) -> Iterator[Hit]:
    # A host file holds a schema's history (create, then each upgrade step): its ADD COLUMN
    # also runs on devices whose table has rows, even when a string above created the table.
    history = not check.migration.path.lower().endswith(".sql")
    for statement, fact in check.migration.each(AddColumn):
        if not fact.not_null or fact.has_default:
            continue
        if history or _existing(check, statement, fact.table):
            yield Hit(
                statement,
                f"ADD COLUMN {fact.column} NOT NULL without DEFAULT fails on a {fact.table} "
                "that has rows",
            )


def _add_not_null_op(op: ops.Operation, dialect: Dialect) -> Iterator[str]:
    if not isinstance(op, ops.AddColumn):
        return
    text = op.definition.upper()
    if "NOT NULL" in text and "DEFAULT" not in text:
        later = " (or add it nullable, backfill, then SetNotNull)" if dialect == "postgres" else ""
        yield f"a NOT NULL column needs a DEFAULT for existing rows{later}"


def _breaking_rename_op(op: ops.Operation, dialect: Dialect) -> Iterator[str]:
    if dialect == "postgres" and isinstance(op, ops.RenameColumn):
        yield (
            "a rename breaks the clients of the previous release; use ExpandColumn (same"
            " type) now and ContractColumn in a later release"
        )


def _breaking_rename_or_drop(check: Check) -> Iterator[Hit]:
    for statement in check.migration.statements:
        for fact in statement.facts:
            message = _breaking_message(fact)
            table = getattr(fact, "table", getattr(fact, "old", ""))
            if not message or not _existing(check, statement, table):
                continue
            if isinstance(fact, RenameTable) and _view_keeps_name(check, statement, fact.old):
                continue
            yield Hit(statement, message)


def _view_keeps_name(check: Check, rename: Statement, old: str) -> bool:
    """A view named `old` created later in the rename's transaction: no client sees a gap."""
    number = check.timeline.before(rename.index).transaction
    if number is None:
        return False
    for statement, view in check.migration.each(CreateView):
        if statement.index > rename.index and view.name == old:
            return check.timeline.before(statement.index).transaction == number
    return False


def _breaking_message(fact: object) -> str | None:
    if isinstance(fact, RenameColumn):
        return f"renaming {fact.table}.{fact.old} to {fact.new} breaks clients that use {fact.old}"
    if isinstance(fact, RenameTable):
        return f"renaming table {fact.old} to {fact.new} breaks clients that use {fact.old}"
    if isinstance(fact, DropColumn):
        return f"dropping {fact.table}.{fact.column} breaks clients that still read or write it"
    return None


RULES = (
    Rule(
        id="DURU203",
        name="constraint-without-not-valid",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD CONSTRAINT ... CHECK or FOREIGN KEY checks every existing row while holding a "
            "lock that blocks writes to the table (and, for a foreign key, to the referenced "
            "table) for the whole scan."
        ),
        fix=(
            "ADD CONSTRAINT ... NOT VALID (instant; new rows are checked), then in a later "
            "step ALTER TABLE ... VALIDATE CONSTRAINT, which scans without blocking writes."
        ),
        check=_constraint_without_not_valid,
    ),
    Rule(
        id="DURU205",
        name="set-not-null-scan",
        severity="error",
        dialects=POSTGRES,
        why=(
            "SET NOT NULL on a column of an existing table scans every row while holding an "
            "ACCESS EXCLUSIVE lock, blocking reads and writes for the whole scan."
        ),
        fix=(
            "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c (no "
            "blocking lock); then SET NOT NULL, which PostgreSQL 12+ proves from the validated "
            "check without a scan; then drop the check. The rule accepts SET NOT NULL once such "
            "a validated check precedes it in the same migration."
        ),
        check=_set_not_null,
    ),
    Rule(
        id="DURU206",
        name="add-not-null-without-default",
        severity="error",
        dialects=BOTH,
        why=(
            "ADD COLUMN ... NOT NULL without a DEFAULT fails on any table that has rows "
            "(PostgreSQL and SQLite both refuse it), so the migration works on an empty test "
            "database and fails in production. In a source file (onCreate plus upgrade steps) "
            "it is reported even when the file created the table: the step also runs on "
            "devices whose table has rows."
        ),
        fix=(
            "Give the column a DEFAULT (a constant default is instant in PostgreSQL 11+), or "
            "add it nullable, backfill in batches, then add the NOT NULL the safe way."
        ),
        check=_add_not_null_without_default,
        operations=_add_not_null_op,
    ),
    Rule(
        id="DURU207",
        name="breaking-rename-or-drop",
        severity="error",
        dialects=POSTGRES,
        why=(
            "Devices and servers of the previous release keep running while the migration "
            "runs and long after; a renamed or dropped table or column makes each of their "
            "queries that names it fail."
        ),
        fix=(
            "Expand/contract: add the new column or table, write both and backfill, move "
            "readers over, and drop the old one only in a later release once no client uses "
            "it; mark that contract step with a suppression giving the reason. A table rename "
            "followed in the same transaction by a view under the old name (a simple view is "
            "updatable) keeps clients working and is not reported."
        ),
        check=_breaking_rename_or_drop,
        operations=_breaking_rename_op,
    ),
)
