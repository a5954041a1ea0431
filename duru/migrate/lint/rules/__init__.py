"""Every lint rule, by id.

DURU0xx are reported by the engine itself, DURU1xx concern copying and rebuilding
tables (SQLite and general), DURU2xx concern PostgreSQL locking and
compatibility. Each rule lists the dialects it applies to.
"""

from __future__ import annotations

from duru.migrate.lint.rules import (
    alter,
    column_type,
    columns,
    constraints,
    copy,
    destructive,
    drop,
    index,
    lock_timeout,
    locking,
    rebuild,
    transaction,
)
from duru.migrate.lint.rules.base import BOTH, Check, Hit, Rule, RunContext, Severity

PARSE_ERROR = Rule(
    id="DURU001",
    name="parse-error",
    severity="error",
    dialects=BOTH,
    why=(
        "The dialect's parser rejected the statement (or the file could not be read), so no "
        "rule could check it, and it may fail when the migration runs. It is an error so "
        "that CI never passes a migration the linter could not read."
    ),
    fix=(
        "Fix the syntax, or run the linter with the right --dialect when the guess (see "
        "duru.migrate.lint) picked the wrong one."
    ),
)

INVALID_SUPPRESSION = Rule(
    id="DURU002",
    name="invalid-suppression",
    severity="warning",
    dialects=BOTH,
    why=(
        "A suppression must name known rules and say why the danger does not apply, so that "
        "a reviewer can judge it; one without a reason suppresses nothing."
    ),
    fix="Write it as: -- duru: allow DURU104 because <reason> (or # / // in host code).",
)

RULES: tuple[Rule, ...] = tuple(
    sorted(
        (
            PARSE_ERROR,
            INVALID_SUPPRESSION,
            *copy.RULES,
            *drop.RULES,
            *rebuild.RULES,
            *transaction.RULES,
            *index.RULES,
            *alter.RULES,
            *column_type.RULES,
            *lock_timeout.RULES,
            *columns.RULES,
            *constraints.RULES,
            *destructive.RULES,
            *locking.RULES,
        ),
        key=lambda rule: rule.id,
    )
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
RULES_BY_NAME = {rule.name: rule for rule in RULES}

__all__ = [
    "INVALID_SUPPRESSION",
    "PARSE_ERROR",
    "RULES",
    "RULES_BY_ID",
    "RULES_BY_NAME",
    "Check",
    "Hit",
    "Rule",
    "RunContext",
    "Severity",
]
