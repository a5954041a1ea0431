"""PostgreSQL rules on keys, constraint validation, exclusion constraints and domains."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import AddColumn, AddConstraint, DomainConstraint, ValidateConstraint
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule, existing_table

_KEYS = {"unique": "UNIQUE", "primary_key": "PRIMARY KEY"}


def _key_without_index(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(AddConstraint):
        if fact.kind in _KEYS and not fact.using_index:
            if existing_table(check, statement, fact.table):
                yield Hit(
                    statement,
                    f"{_KEYS[fact.kind]} on {fact.table} builds its index under an ACCESS "
                    "EXCLUSIVE lock",
                )
    for statement, column in check.migration.each(AddColumn):
        if column.key and existing_table(check, statement, column.table):
            yield Hit(
                statement,
                f"ADD COLUMN {column.column} {_KEYS[column.key]} builds its index under an "
                "ACCESS EXCLUSIVE lock",
            )


def _validate_in_same_transaction(check: Check) -> Iterator[Hit]:
    added: dict[tuple[str, str | None], int | None] = {}
    for statement in check.migration.statements:
        moment = check.timeline.before(statement.index)
        for fact in statement.facts:
            if isinstance(fact, AddConstraint) and fact.not_valid:
                added[(fact.table, fact.name)] = moment.transaction
            elif isinstance(fact, ValidateConstraint):
                key = (fact.table, fact.name)
                if key in added and added[key] is not None and added[key] == moment.transaction:
                    yield Hit(
                        statement,
                        f"VALIDATE CONSTRAINT {fact.name} runs in the transaction that added "
                        f"it NOT VALID, which still holds the lock on {fact.table}",
                    )


def _exclusion(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(AddConstraint):
        if fact.kind == "exclusion" and existing_table(check, statement, fact.table):
            yield Hit(
                statement,
                f"EXCLUDE constraint on {fact.table} builds an index and checks every row "
                "under an ACCESS EXCLUSIVE lock",
            )


def _domain_constraint(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(DomainConstraint):
        if fact.created:
            yield Hit(
                statement,
                f"domain {fact.domain} carries a constraint: changing it later checks every "
                "column of that domain in every table",
                severity="warning",
            )
        elif not fact.not_valid:
            yield Hit(
                statement,
                f"ALTER DOMAIN {fact.domain} ADD CONSTRAINT checks every row of every table "
                "using the domain while holding locks on them",
            )


RULES = (
    Rule(
        id="DURU210",
        name="key-without-concurrent-index",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD PRIMARY KEY / ADD UNIQUE (or ADD COLUMN ... UNIQUE) on a table that holds rows "
            "builds the unique index inside ALTER TABLE, holding an ACCESS EXCLUSIVE lock "
            "that blocks reads and writes until the whole index is built."
        ),
        fix=(
            "CREATE UNIQUE INDEX CONCURRENTLY name ON t (cols) outside a transaction, then "
            "ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX name (or PRIMARY KEY USING "
            "INDEX), which only takes the lock briefly."
        ),
        check=_key_without_index,
    ),
    Rule(
        id="DURU212",
        name="validate-in-same-transaction",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD CONSTRAINT ... NOT VALID takes a lock that lasts until its transaction ends. "
            "VALIDATE CONSTRAINT in the same transaction scans the table while that lock is "
            "still held, so nothing was gained over validating at once. Runners that wrap "
            "each file in a transaction (see --assume-in-transaction) make this the default."
        ),
        fix=(
            "COMMIT between the two steps, or put VALIDATE CONSTRAINT in the next migration file."
        ),
        check=_validate_in_same_transaction,
    ),
    Rule(
        id="DURU218",
        name="domain-constraint",
        severity="error",
        dialects=POSTGRES,
        why=(
            "A domain's constraint applies to every column of that domain. ALTER DOMAIN ... "
            "ADD CONSTRAINT validates all of them at once under locks, and a constraint "
            "created with the domain can never be changed without that scan (CREATE DOMAIN "
            "with a constraint is a warning for that reason)."
        ),
        fix=(
            "Put CHECK constraints on the tables instead (ADD CONSTRAINT ... NOT VALID, then "
            "VALIDATE); if a domain constraint is unavoidable, add it NOT VALID and validate "
            "it in a later step."
        ),
        check=_domain_constraint,
    ),
    Rule(
        id="DURU228",
        name="exclusion-constraint",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD CONSTRAINT ... EXCLUDE on a table that holds rows builds its index and checks "
            "every row under an ACCESS EXCLUSIVE lock; unlike CHECK and FOREIGN KEY it cannot "
            "be added NOT VALID, and it cannot use an index built beforehand."
        ),
        fix=(
            "Create the exclusion constraint with the table, or move rows to a new table that "
            "has it (copy in batches, swap names in one short transaction)."
        ),
        check=_exclusion,
    ),
)
