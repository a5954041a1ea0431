"""The shape of a PostgreSQL SELECT (pglast tree) that feeds a copy."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from duru.migrate.lint.selects import SelectShape


def shape_of(select: Any, ctes: dict[str, SelectShape] | None = None) -> SelectShape:
    """Sources, star and filters of a SELECT (set operations and subqueries included)."""
    ctes = ctes_of(select.withClause, ctes or {})
    if select.op != enums.SetOperation.SETOP_NONE:
        shape = shape_of(select.larg, ctes).merged(shape_of(select.rarg, ctes))
        if select.op != enums.SetOperation.SETOP_UNION:
            shape = shape.with_filter(select.op.name.removeprefix("SETOP_"))
        elif not select.all:
            shape = shape.with_filter("UNION")
        return shape
    star = any(_is_star(target) for target in select.targetList or ())
    shape = SelectShape(star=star, filters=_filters(select))
    for item in select.fromClause or ():
        shape = shape.merged(_from_item(item, ctes))
    return shape


def ctes_of(with_clause: Any, outer: dict[str, SelectShape]) -> dict[str, SelectShape]:
    """The shapes of a WITH clause's queries by name, on top of the enclosing ones."""
    ctes = dict(outer)
    for cte in with_clause.ctes if with_clause else ():
        if isinstance(cte.ctequery, ast.SelectStmt):
            ctes[str(cte.ctename)] = shape_of(cte.ctequery, ctes)
    return ctes


def _filters(select: Any) -> tuple[str, ...]:
    clauses = {
        "WHERE": select.whereClause,
        "LIMIT": select.limitCount,
        "DISTINCT": select.distinctClause,
        "GROUP BY": select.groupClause,
        "HAVING": select.havingClause,
    }
    return tuple(name for name, clause in clauses.items() if clause)


def _from_item(item: Any, ctes: dict[str, SelectShape]) -> SelectShape:
    if isinstance(item, ast.RangeVar):
        name = str(item.relname)
        cte = None if item.schemaname else ctes.get(name)
        return SelectShape(cte.sources, False, cte.filters) if cte else SelectShape(sources=(name,))
    if isinstance(item, ast.RangeSubselect) and isinstance(item.subquery, ast.SelectStmt):
        inner = shape_of(item.subquery, ctes)
        return SelectShape(inner.sources, False, inner.filters)
    if isinstance(item, ast.JoinExpr):
        shape = _from_item(item.larg, ctes).merged(_from_item(item.rarg, ctes))
        inner_join = item.jointype == enums.JoinType.JOIN_INNER
        conditional = item.quals is not None or bool(item.usingClause) or bool(item.isNatural)
        return shape.with_filter("JOIN") if inner_join and conditional else shape
    return SelectShape()


def _is_star(target: Any) -> bool:
    value = getattr(target, "val", None)
    fields = (value.fields or ()) if isinstance(value, ast.ColumnRef) else ()
    return bool(fields) and isinstance(fields[-1], ast.A_Star)
