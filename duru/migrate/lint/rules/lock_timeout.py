"""PostgreSQL rules: every lock a migration takes is bounded by lock_timeout, and every
statement that may hold one for long by statement_timeout."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import LocksTable, NeedsTimeout
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule
from duru.migrate.lint.timeline import Moment


def _needing(check: Check) -> Iterator[tuple[Statement, Moment, str]]:
    """Statements that wait for a lock, with the state before them and what they lock."""
    for statement in check.migration.statements:
        before = check.timeline.before(statement.index)
        for fact in statement.facts:
            if isinstance(fact, LocksTable):
                known = before.new_indexes if fact.index else before.new_tables
                if fact.table not in known:
                    kind = "index" if fact.index else "table"
                    yield statement, before, f"locks {kind} {fact.table}"
                    break
            elif isinstance(fact, NeedsTimeout):
                yield statement, before, f"{fact.what} takes locks"
                break


def _ddl_without_lock_timeout(check: Check) -> Iterator[Hit]:
    # One finding per migration: the first unbounded lock. Later ones share the same fix.
    for statement, before, what in _needing(check):
        if not before.lock_timeout:
            yield Hit(statement, f"{what} with no lock_timeout set before it")
            return


def _ddl_without_statement_timeout(check: Check) -> Iterator[Hit]:
    for statement, before, what in _needing(check):
        if not before.statement_timeout:
            yield Hit(statement, f"{what} with no statement_timeout set before it")
            return


RULES = (
    Rule(
        id="DURU208",
        name="ddl-without-lock-timeout",
        severity="error",
        dialects=POSTGRES,
        why=(
            "DDL waits for its lock behind any long-running query, and while it waits every "
            "other query on the table queues behind it: one slow report can stop all sync "
            "traffic. Without lock_timeout the wait has no end. This covers ALTER, CREATE "
            "INDEX, DROP, TRUNCATE, LOCK TABLE, COMMENT ON, CREATE/ALTER TYPE and DOMAIN, "
            "REINDEX and VACUUM FULL. Reported once per migration, at the first such statement."
        ),
        fix=(
            "Start the migration with SET lock_timeout = '5s' (and a statement_timeout), or "
            "SET LOCAL inside its transaction; retry the migration when it times out."
        ),
        check=_ddl_without_lock_timeout,
    ),
    Rule(
        id="DURU221",
        name="ddl-without-statement-timeout",
        severity="warning",
        dialects=POSTGRES,
        why=(
            "lock_timeout bounds the wait for a lock, not how long the statement then holds "
            "it: a rewrite, scan or REINDEX that runs for minutes blocks the table for "
            "minutes. statement_timeout puts an upper bound on it. Reported once per "
            "migration, at the first statement that takes a lock."
        ),
        fix=(
            "SET statement_timeout = '30s' (or SET LOCAL in the transaction) next to the "
            "lock_timeout; raise it explicitly, with a comment, for a step known to be long."
        ),
        check=_ddl_without_statement_timeout,
    ),
)
