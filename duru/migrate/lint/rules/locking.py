"""PostgreSQL rules on statements that hold a table's lock for long: REINDEX, DETACH
PARTITION, backfills inside a locking transaction, and DO blocks the linter cannot read."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import ChangeRows, DetachPartition, DoBlock, LocksTable, Reindex
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule, existing_table

_REINDEX_CONCURRENTLY = 12
_DETACH_CONCURRENTLY = 14


def _reindex(check: Check) -> Iterator[Hit]:
    old = check.settings.pg_version < _REINDEX_CONCURRENTLY
    for statement, fact in check.migration.each(Reindex):
        if not fact.concurrently:
            note = (
                f" (REINDEX CONCURRENTLY needs PostgreSQL {_REINDEX_CONCURRENTLY}; build a "
                "new index CONCURRENTLY and drop the old one instead)"
                if old
                else ""
            )
            yield Hit(statement, f"REINDEX {fact.target} blocks writes while it runs{note}")


def _detach(check: Check) -> Iterator[Hit]:
    old = check.settings.pg_version < _DETACH_CONCURRENTLY
    for statement, fact in check.migration.each(DetachPartition):
        if fact.concurrently or not existing_table(check, statement, fact.table):
            continue
        yield Hit(
            statement,
            f"DETACH PARTITION {fact.partition} takes an ACCESS EXCLUSIVE lock on {fact.table}"
            + (f" (CONCURRENTLY needs PostgreSQL {_DETACH_CONCURRENTLY})" if old else ""),
            severity="warning" if old else None,
        )


def _backfill_under_lock(check: Check) -> Iterator[Hit]:
    held: dict[int, tuple[Statement, str]] = {}
    for statement in check.migration.statements:
        moment = check.timeline.before(statement.index)
        number = moment.transaction
        for fact in statement.facts:
            if isinstance(fact, LocksTable) and not fact.index:
                if existing_table(check, statement, fact.table):
                    # A statement outside a transaction (or a DO block) is its own transaction.
                    held.setdefault(
                        -1 - statement.index if number is None else number, (statement, fact.table)
                    )
            elif isinstance(fact, ChangeRows) and existing_table(check, statement, fact.table):
                key = -1 - statement.index if number is None else number
                if key in held:
                    locker, table = held[key]
                    yield Hit(
                        statement,
                        f"{fact.kind.upper()} of {fact.table} runs while the lock on {table} "
                        f"taken at line {locker.line} is held: every row is changed before "
                        "the lock is released",
                    )


def _dynamic_do(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(DoBlock):
        if fact.dynamic:
            yield Hit(
                statement,
                f"the DO block runs {fact.dynamic} statement(s) built at run time (EXECUTE) "
                "that no rule can check",
            )


RULES = (
    Rule(
        id="DURU216",
        name="reindex-not-concurrent",
        severity="error",
        dialects=POSTGRES,
        why=(
            "REINDEX without CONCURRENTLY locks the table against writes (and the index "
            "against reads that would use it) until the whole index is rebuilt."
        ),
        fix=(
            "REINDEX INDEX CONCURRENTLY (PostgreSQL 12+), outside a transaction block; before "
            "12, CREATE INDEX CONCURRENTLY a replacement, then DROP INDEX CONCURRENTLY the old."
        ),
        check=_reindex,
    ),
    Rule(
        id="DURU217",
        name="detach-partition-not-concurrent",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ALTER TABLE ... DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the parent "
            "table, blocking every query on all of its partitions while it waits and runs."
        ),
        fix=(
            "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), outside a transaction block; "
            "on older servers run it with a short lock_timeout and retry."
        ),
        check=_detach,
    ),
    Rule(
        id="DURU222",
        name="backfill-under-lock",
        severity="error",
        dialects=POSTGRES,
        why=(
            "An UPDATE or DELETE over a table in the same transaction as an ALTER (or any "
            "statement that locked a table) runs while that lock is held: readers and "
            "writers wait for the whole backfill, and one long transaction bloats the table."
        ),
        fix=(
            "Commit the schema change first; backfill in batches (UPDATE ... WHERE id BETWEEN "
            "...) in their own short transactions, outside the migration or in a later step."
        ),
        check=_backfill_under_lock,
    ),
    Rule(
        id="DURU224",
        name="do-block-dynamic-sql",
        severity="warning",
        dialects=POSTGRES,
        why=(
            "The statements of a DO block are checked like any other, but EXECUTE runs SQL "
            "built as a string at run time, which no rule can see: a lock, rewrite or DROP "
            "there goes unchecked."
        ),
        fix=(
            "Write the statements out in the migration (or in the DO body without EXECUTE); "
            "when the dynamic SQL is needed, suppress with the reason it is safe."
        ),
        check=_dynamic_do,
    ),
)
