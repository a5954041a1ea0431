"""PostgreSQL rules on adding, changing and typing columns of tables that hold rows."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate.lint.facts import AddColumn, DropNotNull, JsonColumn
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule, existing_table

# PostgreSQL 11 made ADD COLUMN with a constant DEFAULT instant (no rewrite).
_INSTANT_DEFAULTS = 11


def _added(check: Check) -> Iterator[tuple[Hit, AddColumn]]:
    for statement, fact in check.migration.each(AddColumn):
        if existing_table(check, statement, fact.table):
            yield Hit(statement, ""), fact


def _add_column_rewrite(check: Check) -> Iterator[Hit]:
    for hit, fact in _added(check):
        column = f"{fact.table}.{fact.column}"
        if fact.auto_increment:
            continue  # DURU226 says it
        if fact.volatile_default:
            why = f"its DEFAULT calls {fact.volatile_default}(), evaluated for every row"
        elif fact.stored_generated:
            why = "a STORED generated column is computed for every row"
        elif fact.has_default and check.settings.pg_version < _INSTANT_DEFAULTS:
            why = f"before PostgreSQL {_INSTANT_DEFAULTS} any DEFAULT is written into every row"
        else:
            continue
        yield Hit(hit.statement, f"adding {column} rewrites the table: {why}")


def _add_column_references(check: Check) -> Iterator[Hit]:
    for hit, fact in _added(check):
        if fact.references:
            yield Hit(
                hit.statement,
                f"ADD COLUMN {fact.column} REFERENCES {fact.references} validates the foreign "
                f"key at once, locking {fact.table} and {fact.references} against writes",
            )


def _auto_increment(check: Check) -> Iterator[Hit]:
    for hit, fact in _added(check):
        if fact.auto_increment:
            kind = fact.type.render() if fact.type else "identity"
            yield Hit(
                hit.statement,
                f"adding {fact.table}.{fact.column} as {kind} fills every existing row with "
                "a new number: the table is rewritten under an ACCESS EXCLUSIVE lock",
            )


def _drop_not_null(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(DropNotNull):
        if existing_table(check, statement, fact.table):
            yield Hit(
                statement,
                f"{fact.table}.{fact.column} may now hold NULL, which clients of the "
                "previous release do not expect",
            )


def _json_column(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(JsonColumn):
        yield Hit(statement, f"{fact.table}.{fact.column} is json, not jsonb")


RULES = (
    Rule(
        id="DURU209",
        name="add-column-rewrite",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD COLUMN is instant only when the default is a constant (PostgreSQL 11+). A "
            "volatile DEFAULT (random(), gen_random_uuid(), clock_timestamp(), nextval()), a "
            "GENERATED ... STORED column, or any DEFAULT before PostgreSQL 11 makes PostgreSQL "
            "write every row anew under an ACCESS EXCLUSIVE lock that blocks reads and writes."
        ),
        fix=(
            "Add the column without the default (or with a constant one), set the volatile "
            "DEFAULT in a separate ALTER COLUMN ... SET DEFAULT (applies to new rows only), "
            "and backfill existing rows in batches outside the migration's transaction. For a "
            "generated value, use a plain column kept up to date by a trigger, backfilled in "
            "batches."
        ),
        check=_add_column_rewrite,
    ),
    Rule(
        id="DURU211",
        name="add-column-references",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ADD COLUMN ... REFERENCES creates the foreign key validated at once: it takes a "
            "SHARE ROW EXCLUSIVE lock on the referenced table and checks the rows while "
            "holding it, so writes to both tables wait."
        ),
        fix=(
            "Add the column without REFERENCES; then ADD CONSTRAINT ... FOREIGN KEY ... NOT "
            "VALID (instant); then, in a later migration or transaction, VALIDATE CONSTRAINT."
        ),
        check=_add_column_references,
    ),
    Rule(
        id="DURU213",
        name="drop-not-null",
        severity="warning",
        dialects=POSTGRES,
        why=(
            "Devices and servers of the previous release keep running; their code assumes the "
            "column is never NULL, and the first NULL a new client writes makes them fail or "
            "sync wrong values."
        ),
        fix=(
            "Make every client handle NULL first, ship that release, and only then drop the "
            "NOT NULL; suppress this finding with the release that handles it as the reason."
        ),
        check=_drop_not_null,
    ),
    Rule(
        id="DURU226",
        name="add-auto-increment-column",
        severity="error",
        dialects=POSTGRES,
        why=(
            "Adding a serial, bigserial or GENERATED ... AS IDENTITY column to a table with "
            "rows gives each row a number: PostgreSQL rewrites the whole table under an "
            "ACCESS EXCLUSIVE lock (strong_migrations' 'adding an auto-incrementing column')."
        ),
        fix=(
            "Create a new table with the column and copy rows in batches, or add a plain "
            "bigint column, attach a sequence as its DEFAULT for new rows, and backfill the "
            "existing rows in batches."
        ),
        check=_auto_increment,
    ),
    Rule(
        id="DURU227",
        name="json-column",
        severity="warning",
        dialects=POSTGRES,
        why=(
            "The json type has no equality operator, so SELECT DISTINCT, UNION and GROUP BY "
            "over a row with it fail; it is also stored as text and re-parsed on every access."
        ),
        fix="Use jsonb (suppress with the reason when key order or duplicate keys must be kept).",
        check=_json_column,
    ),
)
