"""The shape of a SQLite SELECT (sqlglot tree) that feeds a copy, and sqlglot helpers."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from duru.migrate.lint.selects import SelectShape


def table_name(node: Any) -> str:
    """SQLite compares names case-insensitively, quoted or not."""
    if isinstance(node, exp.Schema):
        node = node.this
    return str(node.name).lower()


def arg(node: exp.Expr, name: str) -> Any:
    """The argument `name` of a sqlglot node, or None."""
    # sqlglot renamed some args ("from" -> "from_"); accept both spellings.
    value = node.args.get(name)
    return value if value is not None else node.args.get(f"{name}_")


def ctes_of(with_: exp.With | None, outer: dict[str, SelectShape]) -> dict[str, SelectShape]:
    """The shapes of a WITH clause's queries by name, on top of the enclosing ones."""
    ctes = dict(outer)
    for cte in with_.expressions if with_ is not None else ():
        if isinstance(cte.this, exp.Query):
            ctes[cte.alias_or_name.lower()] = shape_of(cte.this, ctes)
    return ctes


def shape_of(query: exp.Expr, ctes: dict[str, SelectShape]) -> SelectShape:
    """Sources, star and filters of a SELECT (set operations and subqueries included)."""
    ctes = ctes_of(arg(query, "with"), ctes)
    if isinstance(query, exp.SetOperation):
        shape = shape_of(query.this, ctes).merged(shape_of(query.expression, ctes))
        if not isinstance(query, exp.Union):
            return shape.with_filter(type(query).__name__.upper())
        return shape.with_filter("UNION") if query.args.get("distinct") else shape
    if not isinstance(query, exp.Select):
        return SelectShape()
    star = any(_is_star(column) for column in query.expressions)
    shape = SelectShape(star=star, filters=_filters(query))
    from_ = arg(query, "from")
    if from_ is not None:
        shape = shape.merged(_from_item(from_.this, ctes))
    for join in query.args.get("joins") or ():
        shape = shape.merged(_from_item(join.this, ctes))
        if _filters_rows(join):
            shape = shape.with_filter("JOIN")
    return shape


def _filters(select: exp.Select) -> tuple[str, ...]:
    clauses = {
        "WHERE": select.args.get("where"),
        "LIMIT": select.args.get("limit"),
        "DISTINCT": select.args.get("distinct"),
        "GROUP BY": select.args.get("group"),
        "HAVING": select.args.get("having"),
    }
    return tuple(name for name, clause in clauses.items() if clause)


def _from_item(item: exp.Expr, ctes: dict[str, SelectShape]) -> SelectShape:
    if isinstance(item, exp.Table):
        name = table_name(item)
        cte = None if item.args.get("db") else ctes.get(name)
        return SelectShape(cte.sources, False, cte.filters) if cte else SelectShape((name,))
    if isinstance(item, exp.Subquery):
        inner = shape_of(item.this, ctes)
        return SelectShape(inner.sources, False, inner.filters)
    return SelectShape()


def _filters_rows(join: exp.Join) -> bool:
    side = str(join.args.get("side") or "").upper()
    kind = str(join.args.get("kind") or "").upper()
    method = str(join.args.get("method") or "").upper()
    if side or kind == "CROSS":
        return False
    return bool(join.args.get("on") or join.args.get("using") or method == "NATURAL")


def _is_star(column: exp.Expr) -> bool:
    return isinstance(column, exp.Star) or (
        isinstance(column, exp.Column) and isinstance(column.this, exp.Star)
    )
