"""PostgreSQL rule: build and drop indexes without blocking writes."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import CreateIndex, DropIndex
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule


def _index_not_concurrent(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(CreateIndex):
        before = check.timeline.before(statement.index)
        if not fact.concurrently and fact.table not in before.new_tables:
            yield Hit(statement, f"CREATE INDEX on {fact.table} blocks every write to it")
    for statement, drop in check.migration.each(DropIndex):
        before = check.timeline.before(statement.index)
        if not drop.concurrently and drop.name not in before.new_indexes:
            yield Hit(statement, f"DROP INDEX {drop.name} blocks its table")


_MAX_COLUMNS = 3


def _wide_index(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(CreateIndex):
        if fact.columns > _MAX_COLUMNS:
            yield Hit(statement, f"the index on {fact.table} has {fact.columns} columns")


RULES = (
    Rule(
        id="DURU201",
        name="index-not-concurrent",
        severity="error",
        dialects=POSTGRES,
        why=(
            "CREATE INDEX holds a SHARE lock on the table until the whole index is built, so "
            "every INSERT, UPDATE and DELETE waits (minutes on a large table); DROP INDEX takes "
            "an ACCESS EXCLUSIVE lock that blocks reads too. Tables created in the same "
            "migration are exempt."
        ),
        fix=(
            "CREATE INDEX CONCURRENTLY / DROP INDEX CONCURRENTLY, each outside a transaction "
            "block; after CREATE INDEX CONCURRENTLY check that the index is valid and rebuild "
            "an invalid one."
        ),
        check=_index_not_concurrent,
    ),
    Rule(
        id="DURU225",
        name="index-too-many-columns",
        severity="warning",
        dialects=POSTGRES,
        why=(
            "A B-tree index with more than three columns is large, slows every write and is "
            "used only by queries that filter on its leading columns; it is usually a sign "
            "that a narrower index (or a partial one) would serve the query."
        ),
        fix=(
            "Index the columns the query filters on (equality first, then the range or sort "
            "column); move columns only read into INCLUDE (...); suppress with the query it "
            "serves when all columns are needed."
        ),
        check=_wide_index,
    ),
)
