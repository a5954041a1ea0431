"""PostgreSQL rule: every lock a migration takes must be bounded by lock_timeout."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import LocksTable
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule


def _ddl_without_lock_timeout(check: Check) -> Iterator[Hit]:
    # One finding per migration: the first unbounded lock. Later ones share the same fix.
    for statement, lock in check.migration.each(LocksTable):
        before = check.timeline.before(statement.index)
        if before.lock_timeout:
            continue
        known = before.new_indexes if lock.index else before.new_tables
        if lock.table in known:
            continue
        kind = "index" if lock.index else "table"
        yield Hit(statement, f"locks {kind} {lock.table} with no lock_timeout set before it")
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
            "traffic. Without lock_timeout the wait has no end. Reported once per migration, "
            "at the first such statement."
        ),
        fix=(
            "Start the migration with SET lock_timeout = '5s' (and a statement_timeout), or "
            "SET LOCAL inside its transaction; retry the migration when it times out."
        ),
        check=_ddl_without_lock_timeout,
    ),
)
