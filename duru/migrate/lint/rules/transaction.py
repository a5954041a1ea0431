"""Rules on statements that behave differently inside a transaction block."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import Concurrently, Pragma, Transaction
from duru.migrate.lint.rules.base import BOTH, POSTGRES, SQLITE, Check, Hit, Rule


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


def _transaction_nesting(check: Check) -> Iterator[Hit]:
    last_begin = None
    for statement, fact in check.migration.each(Transaction):
        if fact.action != "begin":
            continue
        before = check.timeline.before(statement.index)
        last_begin = statement
        if before.implicit:
            yield Hit(statement, "BEGIN inside the transaction the runner wraps the file in")
        elif before.in_transaction:
            yield Hit(statement, "BEGIN inside a transaction that is already open")
    final = check.timeline.before(len(check.migration.statements))
    if last_begin is not None and final.in_transaction and not final.implicit:
        yield Hit(last_begin, "BEGIN without a COMMIT or ROLLBACK before the migration ends")


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
    Rule(
        id="DURU220",
        name="transaction-nesting",
        severity="error",
        dialects=BOTH,
        why=(
            "A BEGIN inside an open transaction does not nest: PostgreSQL only warns and the "
            "first COMMIT commits everything, SQLite fails. A runner that already wraps the "
            "file in a transaction (--assume-in-transaction) makes any BEGIN nested. A BEGIN "
            "without COMMIT leaves the work to whatever the runner does at the end: a commit, "
            "a rollback, or locks held by an idle session."
        ),
        fix=(
            "One BEGIN ... COMMIT per migration, or none when the runner provides the "
            "transaction; use SAVEPOINT for a nested step."
        ),
        check=_transaction_nesting,
    ),
)
