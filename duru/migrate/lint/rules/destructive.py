"""Rules on statements that destroy data or rename what clients name."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import (
    ChangeRows,
    CopyRows,
    DropDatabase,
    EnumChange,
    RenameSchema,
    Truncate,
)
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import BOTH, POSTGRES, Check, Hit, Rule, existing_table


def _drop_database(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(DropDatabase):
        yield Hit(statement, f"DROP DATABASE {fact.name} destroys every table and row in it")


def _truncate_cascade(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(Truncate):
        if fact.cascade:
            yield Hit(
                statement,
                f"TRUNCATE {fact.table} CASCADE also empties every table that references it",
            )


def _orphan_delete(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(ChangeRows):
        if fact.kind != "delete" or not fact.orphans:
            continue
        if not existing_table(check, statement, fact.table) or _kept(check, statement, fact):
            continue
        yield Hit(
            statement,
            f"deletes the rows of {fact.table} that have no match: they are user data, and "
            "nothing keeps them",
        )


def _kept(check: Check, delete: Statement, fact: ChangeRows) -> bool:
    """A copy out of the table (a quarantine) earlier in the migration."""
    return any(
        statement.index < delete.index and fact.table in copy.sources and copy.target != fact.table
        for statement, copy in check.migration.each(CopyRows)
    )


def _rename_schema(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(RenameSchema):
        yield Hit(statement, f"renaming schema {fact.old} to {fact.new} breaks every client")


def _enum_change(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(EnumChange):
        if fact.renamed_from is not None:
            yield Hit(
                statement,
                f"renaming {fact.type} value {fact.renamed_from!r} to {fact.value!r} breaks "
                f"clients that still send {fact.renamed_from!r}",
            )
        elif fact.placed:
            yield Hit(
                statement,
                f"{fact.value!r} is placed among {fact.type}'s values: the order of the "
                "existing values, and so ORDER BY and comparisons on them, change",
                severity="warning",
            )


RULES = (
    Rule(
        id="DURU214",
        name="drop-database",
        severity="error",
        dialects=POSTGRES,
        why="DROP DATABASE destroys every table and row in it; no migration should do that.",
        fix="Remove it from the migration; drop databases by hand, after a verified backup.",
        check=_drop_database,
    ),
    Rule(
        id="DURU215",
        name="truncate-cascade",
        severity="error",
        dialects=POSTGRES,
        why=(
            "TRUNCATE ... CASCADE empties not only the named table but every table with a "
            "foreign key to it, and theirs in turn: user data the migration never names is "
            "gone, under an ACCESS EXCLUSIVE lock."
        ),
        fix=(
            "Name every table to empty explicitly (TRUNCATE a, b), after a backup, or delete "
            "the intended rows in batches with DELETE ... WHERE."
        ),
        check=_truncate_cascade,
    ),
    Rule(
        id="DURU219",
        name="enum-value-change",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ALTER TYPE ... RENAME VALUE breaks every client of the previous release that "
            "still writes or compares the old label. ADD VALUE ... BEFORE/AFTER (a warning) "
            "changes the enum's sort order, so ORDER BY results and < / > comparisons change "
            "for existing rows."
        ),
        fix=(
            "Add the new value at the end, write both while clients move over, migrate rows "
            "in batches, and stop using the old value in a later release; never rename a "
            "label clients use."
        ),
        check=_enum_change,
    ),
    Rule(
        id="DURU223",
        name="orphan-delete",
        severity="error",
        dialects=BOTH,
        why=(
            "A DELETE of 'orphans' (rows with NOT EXISTS / NOT IN / LEFT JOIN ... IS NULL "
            "against a parent) usually runs before adding a foreign key. The rows it removes "
            "are the user's notes, tags or tasks whose parent was lost, often by a sync bug: "
            "deleting them destroys data that could have been repaired."
        ),
        fix=(
            "Copy the rows into a quarantine table first (INSERT INTO quarantine_x SELECT ... "
            "with the same WHERE, plus the reason), check the counts, then delete; or "
            "re-parent them. The rule is satisfied when such a copy out of the table precedes "
            "the DELETE."
        ),
        check=_orphan_delete,
    ),
    Rule(
        id="DURU229",
        name="rename-schema",
        severity="error",
        dialects=POSTGRES,
        why=(
            "Every query, function, policy and client that names the schema fails the moment "
            "it is renamed (strong_migrations' 'renaming a schema')."
        ),
        fix=(
            "Create the new schema, move objects over while both names work (views or "
            "search_path), switch clients, and drop the old schema in a later release."
        ),
        check=_rename_schema,
    ),
)
