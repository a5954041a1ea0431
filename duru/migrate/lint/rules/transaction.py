"""Rules on statements that behave differently inside a transaction block."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import Concurrently, Pragma
from duru.migrate.lint.rules.base import POSTGRES, SQLITE, Check, Hit, Rule


def _fk_pragma_in_transaction(check: Check) -> Iterator[Hit]:
    for statement, pragma in check.migration.each(Pragma):
        if pragma.name != "foreign_keys" or pragma.value is None:
            continue
        if check.timeline.before(statement.index).in_transaction:
            yield Hit(
                statement,
                f"PRAGMA foreign_keys={pragma.value} inside a transaction does nothing",
            )


def _concurrently_in_transaction(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(Concurrently):
        if check.timeline.before(statement.index).in_transaction:
            yield Hit(statement, f"{fact.what} inside BEGIN ... COMMIT fails")


RULES = (
    Rule(
        id="DURU107",
        name="fk-pragma-in-transaction",
        severity="error",
        dialects=SQLITE,
        why=(
            "SQLite ignores PRAGMA foreign_keys while a transaction is open, without an error. "
            "The migration believes enforcement is off, and DROP TABLE then cascades deletes "
            "into child tables (or enforcement believed on is not)."
        ),
        fix=(
            "Set PRAGMA foreign_keys=OFF before BEGIN and PRAGMA foreign_keys=ON after COMMIT; "
            "check PRAGMA foreign_key_check before COMMIT."
        ),
        check=_fk_pragma_in_transaction,
    ),
    Rule(
        id="DURU202",
        name="concurrently-in-transaction",
        severity="error",
        dialects=POSTGRES,
        why=(
            "CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and "
            "DETACH PARTITION CONCURRENTLY cannot run inside a transaction block: PostgreSQL "
            "rejects them, and the migration fails at that step."
        ),
        fix=(
            "Run the CONCURRENTLY statement on its own, outside BEGIN ... COMMIT (duru's "
            "runner marks such steps as autocommit), and check afterwards that the index is "
            "valid (pg_index.indisvalid); drop and retry an invalid leftover."
        ),
        check=_concurrently_in_transaction,
    ),
)
