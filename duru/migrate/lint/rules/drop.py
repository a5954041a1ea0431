"""Rules on dropping tables that hold rows."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import CopyRows, CreateTable, DropTable, Pragma, VacuumInto
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import BOTH, SQLITE, Check, Hit, Rule

BACKUP_MARKER = "duru: backup verified"


def _drop_without_backup(check: Check) -> Iterator[Hit]:
    for statement, drop in check.migration.each(DropTable):
        before = check.timeline.before(statement.index)
        if drop.name in before.new_tables:
            continue
        if _backed_up(check, statement, before.identity(drop.name)):
            continue
        yield Hit(
            statement,
            f"DROP TABLE {drop.name} destroys its rows and no earlier step of this migration "
            "backs them up",
        )


def _backed_up(check: Check, drop: Statement, identity: str) -> bool:
    """A backup before `drop`: VACUUM INTO, a full CREATE TABLE ... AS SELECT, or the marker."""
    if any(
        BACKUP_MARKER in comment.text.lower() and comment.line <= drop.line
        for comment in check.migration.comments
    ):
        return True
    for statement in check.migration.statements[: drop.index]:
        moment = check.timeline.before(statement.index)
        for fact in statement.facts:
            # VACUUM cannot run inside a transaction: there it fails and backs nothing up.
            if isinstance(fact, VacuumInto) and not moment.in_transaction:
                return True
            if isinstance(fact, CopyRows) and fact.created and not fact.filters:
                if any(moment.identity(source) == identity for source in fact.sources):
                    return True
    return False


def _drop_cascade_parent(check: Check) -> Iterator[Hit]:
    for statement, drop in check.migration.each(DropTable):
        before = check.timeline.before(statement.index)
        if drop.name in before.new_tables or not before.fk_enforced:
            continue
        children = set(check.context.cascade_children.get(drop.name, ()))
        for earlier, create in check.migration.each(CreateTable):
            if earlier.index < statement.index and drop.name in create.cascade_parents:
                children.add(create.name)
        children.discard(drop.name)
        if not children:
            continue
        note = _ignored_pragma_note(check, statement)
        yield Hit(
            statement,
            f"DROP TABLE {drop.name} deletes its rows first, and ON DELETE CASCADE in "
            f"{', '.join(sorted(children))} deletes theirs with them{note}",
        )


def _ignored_pragma_note(check: Check, drop: Statement) -> str:
    for statement, pragma in check.migration.each(Pragma):
        if statement.index >= drop.index or pragma.name != "foreign_keys":
            continue
        if check.timeline.before(statement.index).in_transaction:
            return f" (the PRAGMA foreign_keys at line {statement.line} is inside a transaction)"
    return ""


RULES = (
    Rule(
        id="DURU104",
        name="drop-without-backup",
        severity="error",
        dialects=BOTH,
        why=(
            "DROP TABLE of a table this migration did not create destroys rows that exist "
            "nowhere else once the migration commits; if the copy before it was wrong there "
            "is no way back."
        ),
        fix=(
            "Take a backup earlier in the same migration and verify it: VACUUM INTO "
            "'<file>' (SQLite, outside a transaction), or CREATE TABLE backup_x AS SELECT * "
            "FROM x (unfiltered). When the backup is taken and verified outside the SQL (duru's "
            "migration runner does this in phase 1), say so with a comment before the DROP: "
            f"-- {BACKUP_MARKER}"
        ),
        check=_drop_without_backup,
    ),
    Rule(
        id="DURU106",
        name="drop-cascade-parent",
        severity="error",
        dialects=SQLITE,
        why=(
            "With foreign keys enforced, SQLite's DROP TABLE first deletes every row, which "
            "fires ON DELETE CASCADE in each child table: the child rows are deleted too. "
            "PRAGMA foreign_keys=OFF is silently ignored inside a transaction, so turning it "
            "off between BEGIN and COMMIT does not help."
        ),
        fix=(
            "Run PRAGMA foreign_keys=OFF before BEGIN (outside any transaction), rebuild, run "
            "PRAGMA foreign_key_check before COMMIT, then PRAGMA foreign_keys=ON after it. "
            "This is SQLite's documented table-rebuild procedure."
        ),
        check=_drop_cascade_parent,
    ),
)
