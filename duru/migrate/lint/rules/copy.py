"""Rules on copying rows between tables (INSERT ... SELECT, CREATE TABLE ... AS SELECT)."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import CopyRows, DropTable
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import BOTH, Check, Hit, Rule

_CLAUSES = {
    "ignore": ("INSERT OR IGNORE", "dropped"),
    "replace": ("INSERT OR REPLACE / REPLACE INTO", "overwritten"),
    "nothing": ("ON CONFLICT DO NOTHING", "dropped"),
    "update": ("ON CONFLICT DO UPDATE", "overwritten"),
}


def _lossy_conflict(check: Check) -> Iterator[Hit]:
    for statement, copy in check.migration.each(CopyRows):
        # An upsert of computed totals (a daily count, say) replaces totals, not rows.
        if copy.conflict is None or copy.summary:
            continue
        clause, outcome = _CLAUSES[copy.conflict]
        yield Hit(
            statement,
            f"{clause} copying {_names(copy.sources)} into {copy.target}: every row that "
            f"conflicts with one already copied is {outcome} without a trace",
        )


def _positional_copy(check: Check) -> Iterator[Hit]:
    for statement, copy in check.migration.each(CopyRows):
        if copy.created:
            continue
        if copy.star:
            yield Hit(
                statement,
                f"SELECT * copies {_names(copy.sources)} into {copy.target} by column "
                "position, not by name",
            )
        elif not copy.target_columns:
            yield Hit(
                statement,
                f"INSERT INTO {copy.target} without a column list fills columns by position",
            )


def _filtered_copy_then_drop(check: Check) -> Iterator[Hit]:
    migration, timeline = check.migration, check.timeline
    for statement, copy in migration.each(CopyRows):
        if not copy.filters:
            continue
        before = timeline.before(statement.index)
        for source in copy.sources:
            if source in before.new_tables:
                continue
            drop = _later_drop(check, statement, before.identity(source))
            if drop is None or _accounted(check, copy, before.identity(source), drop):
                continue
            yield Hit(
                statement,
                f"rows of {source} left out by {' / '.join(copy.filters)} are lost when "
                f"DROP TABLE {source} runs at line {drop.line}",
            )


def _later_drop(check: Check, copy_statement: Statement, identity: str) -> Statement | None:
    for statement, drop in check.migration.each(DropTable):
        if statement.index <= copy_statement.index:
            continue
        if check.timeline.before(statement.index).identity(drop.name) == identity:
            return statement
    return None


def _accounted(check: Check, copy: CopyRows, identity: str, drop: Statement) -> bool:
    """True when a copy from the same table into another one (a quarantine) precedes the drop."""
    for statement, other in check.migration.each(CopyRows):
        if statement.index >= drop.index or other.target == copy.target:
            continue
        moment = check.timeline.before(statement.index)
        if any(moment.identity(source) == identity for source in other.sources):
            return True
    return False


def _names(sources: tuple[str, ...]) -> str:
    return ", ".join(sources) or "a query"


RULES = (
    Rule(
        id="DURU101",
        name="insert-or-ignore-copy",
        severity="error",
        dialects=BOTH,
        why=(
            "A copy with a conflict clause (INSERT OR IGNORE, INSERT OR REPLACE, REPLACE INTO, "
            "ON CONFLICT DO NOTHING / DO UPDATE) resolves every duplicate or constraint "
            "violation by silently dropping or overwriting a row. Migration 12 lost duplicate "
            "tags and orphan rows this way, and nothing counted them. An aggregating SELECT "
            "(GROUP BY, count(...)) is exempt: it writes computed totals, not copied rows."
        ),
        fix=(
            "Copy with a plain INSERT and explicit columns. First move the rows the new "
            "constraints would reject into a quarantine table with their reason (INSERT INTO "
            "quarantine SELECT ... WHERE <violates>), then copy the rest and check "
            "count(source) = count(target) + count(quarantine) before going on."
        ),
        check=_lossy_conflict,
    ),
    Rule(
        id="DURU102",
        name="select-star-copy",
        severity="error",
        dialects=BOTH,
        why=(
            "SELECT * (or an INSERT without a column list) matches columns by position. A table "
            "whose columns were added later by ALTER TABLE has them in another order than its "
            "CREATE statement, so values land in the wrong columns, or the copy fails."
        ),
        fix=(
            "Name the columns on both sides: INSERT INTO notes_new (id, title, body) "
            "SELECT id, title, body FROM notes."
        ),
        check=_positional_copy,
    ),
    Rule(
        id="DURU103",
        name="filtered-copy-then-drop",
        severity="error",
        dialects=BOTH,
        why=(
            "The copy keeps only the rows its WHERE, inner JOIN, LIMIT, DISTINCT or GROUP BY "
            "lets through, and the migration later drops the source table, so every other row "
            "is gone for good (Migration 12: WHERE note_id IN (SELECT id FROM local_notes))."
        ),
        fix=(
            "Copy every row, or copy the rows you leave out into a quarantine table (with the "
            "reason) before the DROP, and check that the counts add up. The rule is satisfied "
            "when another copy from the same source into a different table precedes the DROP."
        ),
        check=_filtered_copy_then_drop,
    ),
)
