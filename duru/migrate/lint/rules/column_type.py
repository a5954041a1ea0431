"""PostgreSQL rule: changing a column's type must not rewrite the table."""

from __future__ import annotations

from collections.abc import Iterator

from duru.migrate import ops
from duru.migrate.lint.facts import AddColumn, AlterColumnType, CreateTable, SqlType
from duru.migrate.lint.migration import Statement
from duru.migrate.lint.rules.base import POSTGRES, Check, Hit, Rule
from duru.migrate.lint.sqltext import Dialect

# Types a binary-compatible widening can end at (from varchar/text, numeric, varbit, cidr).
_WIDENING_TARGETS = {"varchar", "text", "numeric", "varbit", "inet"}


def is_widening(old: SqlType, new: SqlType) -> bool:
    """True when PostgreSQL changes `old` to `new` without rewriting the table.

    Known cases: the same type; varchar(n) to varchar(m >= n), to varchar or to
    text; text to varchar; numeric(p, s) to numeric(q >= p, s) or to numeric;
    varbit(n) to varbit(m >= n) or varbit; cidr to inet.
    """
    if old == new:
        return True
    if old.array != new.array:
        return False
    if old.name in ("varchar", "text") and new.name in ("varchar", "text"):
        return new.name == "text" or _longer(old, new) or not new.modifiers
    if old.name == new.name == "varbit":
        return _longer(old, new) or not new.modifiers
    if old.name == new.name == "numeric":
        return not new.modifiers or _more_precise(old, new)
    return (old.name, new.name) == ("cidr", "inet")


def _longer(old: SqlType, new: SqlType) -> bool:
    return bool(old.modifiers and new.modifiers) and new.modifiers[0] >= old.modifiers[0]


def _more_precise(old: SqlType, new: SqlType) -> bool:
    if not old.modifiers:
        return False
    old_scale = old.modifiers[1] if len(old.modifiers) > 1 else 0
    new_scale = new.modifiers[1] if len(new.modifiers) > 1 else 0
    return new_scale == old_scale and new.modifiers[0] >= old.modifiers[0]


def _column_type_rewrite(check: Check) -> Iterator[Hit]:
    for statement, fact in check.migration.each(AlterColumnType):
        if fact.table in check.timeline.before(statement.index).new_tables:
            continue
        column = f"{fact.table}.{fact.column}"
        new = fact.new_type.render()
        old = _old_type(check, statement, fact)
        if fact.using:
            yield Hit(statement, f"ALTER {column} TYPE {new} USING ... rewrites the table")
        elif old is not None and not is_widening(old, fact.new_type):
            yield Hit(statement, f"changing {column} from {old.render()} to {new} rewrites it")
        elif old is None and fact.new_type.name not in _WIDENING_TARGETS:
            yield Hit(statement, f"changing {column} to {new} rewrites the table")
        elif old is None:
            yield Hit(
                statement,
                f"the old type of {column} is not visible to the linter; changing it to {new} "
                "rewrites the table unless it is a widening of the same kind",
                severity="warning",
            )


def _old_type(check: Check, until: Statement, fact: AlterColumnType) -> SqlType | None:
    """The column's type just before `until`, from this migration or from earlier files."""
    key = (fact.table, fact.column)
    found = check.context.column_types.get(key)
    for statement in check.migration.statements[: until.index]:
        for other in statement.facts:
            if isinstance(other, CreateTable) and other.name == fact.table:
                found = dict(other.columns).get(fact.column, found)
            elif isinstance(other, AddColumn) and (other.table, other.column) == key:
                found = other.type
            elif isinstance(other, AlterColumnType) and (other.table, other.column) == key:
                found = other.new_type
    return found


def _change_type_op(op: ops.Operation, dialect: Dialect) -> Iterator[str]:
    # On a device, ChangeType rebuilds the table through a bridge: no lock to fear there.
    if dialect == "postgres" and isinstance(op, ops.ChangeType):
        yield (
            "ALTER COLUMN TYPE rewrites the table under an exclusive lock; use ExpandColumn"
            " (new column, up/down conversions) and ContractColumn"
        )


RULES = (
    Rule(
        id="DURU204",
        name="column-type-rewrite",
        severity="error",
        dialects=POSTGRES,
        why=(
            "ALTER COLUMN ... TYPE rewrites the whole table and rebuilds its indexes under an "
            "ACCESS EXCLUSIVE lock unless the change is binary compatible: varchar(n) to a "
            "longer varchar, varchar or text; numeric(p,s) to a larger precision with the same "
            "scale or to numeric; varbit(n) to a longer varbit; cidr to inet. A USING clause "
            "always rewrites. When the old type is not visible (declared outside the linted "
            "files) and the new type could be a widening, the finding is a warning."
        ),
        fix=(
            "Expand/contract: add a column of the new type, backfill it in batches, keep both "
            "in sync (trigger or double write), switch readers, then drop the old column in a "
            "later release."
        ),
        check=_column_type_rewrite,
        operations=_change_type_op,
    ),
)
