"""Rules on table rebuilds (create a new table, copy, drop the old one, rename)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from duru.migrate.lint.facts import CreateTable, DropTable, Pragma, RenameTable
from duru.migrate.lint.migration import Migration, Statement
from duru.migrate.lint.rules.base import BOTH, SQLITE, Check, Hit, Rule


@dataclass(frozen=True)
class Rebuild:
    """One rebuild of `table`, from its first statement to the one that completes it."""

    table: str
    start: Statement
    end: Statement


def find_rebuilds(migration: Migration) -> list[Rebuild]:
    """Rebuilds in either order the SQLite documentation and apps use.

    ``CREATE x_new; ...; DROP x; ALTER TABLE x_new RENAME TO x`` and
    ``ALTER TABLE x RENAME TO x_old; CREATE x; ...; DROP x_old``.
    """
    created: dict[str, Statement] = {}
    dropped: set[str] = set()
    renamed_away: dict[str, tuple[str, Statement]] = {}
    rebuilds: list[Rebuild] = []
    for statement in migration.statements:
        for fact in statement.facts:
            if isinstance(fact, CreateTable):
                created[fact.name] = statement
            elif isinstance(fact, RenameTable):
                if fact.old in created and fact.new in dropped:
                    rebuilds.append(Rebuild(fact.new, created.pop(fact.old), statement))
                    dropped.discard(fact.new)
                elif fact.old not in created:
                    renamed_away[fact.new] = (fact.old, statement)
            elif isinstance(fact, DropTable):
                away = renamed_away.pop(fact.name, None)
                if away is not None and away[0] in created:
                    rebuilds.append(Rebuild(away[0], away[1], statement))
                    created.pop(away[0])
                elif fact.name not in created:
                    dropped.add(fact.name)
    return rebuilds


def _many_rebuilds(check: Check) -> Iterator[Hit]:
    rebuilds = find_rebuilds(check.migration)
    if len(rebuilds) > 1:
        tables = ", ".join(rebuild.table for rebuild in rebuilds)
        yield Hit(rebuilds[1].start, f"{len(rebuilds)} tables rebuilt in one migration: {tables}")


def _rebuild_without_fk_check(check: Check) -> Iterator[Hit]:
    for rebuild in find_rebuilds(check.migration):
        if not _checked_after(check.migration, rebuild):
            yield Hit(
                rebuild.end,
                f"{rebuild.table} is rebuilt and no PRAGMA foreign_key_check follows",
            )


def _checked_after(migration: Migration, rebuild: Rebuild) -> bool:
    for statement, pragma in migration.each(Pragma):
        if statement.index > rebuild.end.index and pragma.name == "foreign_key_check":
            if pragma.value in (None, rebuild.table):
                return True
    return False


RULES = (
    Rule(
        id="DURU105",
        name="many-rebuilds",
        severity="warning",
        dialects=BOTH,
        why=(
            "Each rebuild copies, drops and renames a whole table. Several in one migration "
            "(Migration 12 rebuilt seven) multiply what can go wrong, hold one long write "
            "transaction, and leave no point to verify or roll back between tables."
        ),
        fix=(
            "Rebuild one table per migration, each with its own backup, count check and "
            "PRAGMA foreign_key_check; or use duru's migration engine, which rebuilds table "
            "by table with a rollback point after each."
        ),
        check=_many_rebuilds,
    ),
    Rule(
        id="DURU108",
        name="rebuild-without-fk-check",
        severity="error",
        dialects=SQLITE,
        why=(
            "A rebuild runs with foreign key enforcement off (it must, or DROP TABLE "
            "cascades), so nothing checks that the rebuilt table's rows and its children's "
            "rows still point at existing parents; broken references stay hidden until the "
            "app or the next sync trips on them."
        ),
        fix=(
            "After the rebuild and before COMMIT run PRAGMA foreign_key_check (or "
            "PRAGMA foreign_key_check(table)) and abort when it returns any row."
        ),
        check=_rebuild_without_fk_check,
    ),
)
