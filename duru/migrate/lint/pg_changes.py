"""PostgreSQL readers for row changes (UPDATE, DELETE) and DO blocks.

A DELETE counts as an orphan cleanup when its WHERE keeps the rows that have no
match elsewhere: ``NOT EXISTS (SELECT ...)``, ``x NOT IN (SELECT ...)`` or a
``LEFT JOIN ... WHERE other.id IS NULL``.

A DO block's PL/pgSQL body is parsed by PostgreSQL's own PL/pgSQL parser (through
pglast); every plain SQL statement in it, at any depth of IF/LOOP/BEGIN, is read
like a top-level statement and its facts follow the block's `DoBlock` fact.
``EXECUTE`` of a built string cannot be read and is counted as dynamic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from pglast import ast, enums
from pglast.parser import ParseError, parse_plpgsql_json

from duru.migrate.lint.facts import ChangeRows, DoBlock, Fact

_BODY_TAG = "$duru_do_body$"


def update(node: Any) -> Iterator[Fact]:
    yield ChangeRows(str(node.relation.relname), "update", node.whereClause is not None)


def delete(node: Any) -> Iterator[Fact]:
    where = node.whereClause
    orphans = _not_matching(where) or (_left_join(node.usingClause) and _is_null_test(where))
    yield ChangeRows(str(node.relation.relname), "delete", where is not None, orphans)


def _not_matching(expr: Any) -> bool:
    """NOT EXISTS (...) or NOT (x IN (SELECT ...)) anywhere in an AND/OR tree."""
    if not isinstance(expr, ast.BoolExpr):
        return False
    if expr.boolop == enums.BoolExprType.NOT_EXPR:
        inner = expr.args[0] if expr.args else None
        kinds = (enums.SubLinkType.EXISTS_SUBLINK, enums.SubLinkType.ANY_SUBLINK)
        return isinstance(inner, ast.SubLink) and inner.subLinkType in kinds
    return any(_not_matching(arg) for arg in expr.args or ())


def _left_join(using: Any) -> bool:
    return any(
        isinstance(item, ast.JoinExpr) and item.jointype == enums.JoinType.JOIN_LEFT
        for item in using or ()
    )


def _is_null_test(expr: Any) -> bool:
    if isinstance(expr, ast.NullTest):
        return bool(expr.nulltesttype == enums.NullTestType.IS_NULL)
    if isinstance(expr, ast.BoolExpr) and expr.boolop == enums.BoolExprType.AND_EXPR:
        return any(_is_null_test(arg) for arg in expr.args or ())
    return False


def do_block(node: Any, read: Callable[[str], tuple[Fact, ...]]) -> Iterator[Fact]:
    """Facts of a DO block: `DoBlock`, then the facts of each statement of its body."""
    body = next(
        (str(arg.arg.sval) for arg in node.args or () if arg.defname == "as"),
        None,
    )
    language = next(
        (str(arg.arg.sval) for arg in node.args or () if arg.defname == "language"),
        "plpgsql",
    )
    if body is None or language.lower() != "plpgsql" or _BODY_TAG in body:
        yield DoBlock(0, 1)
        return
    queries, dynamic = _body_statements(body)
    yield DoBlock(len(queries), dynamic)
    for query in queries:
        yield from read(query)


def _body_statements(body: str) -> tuple[list[str], int]:
    wrapper = (
        f"CREATE FUNCTION duru_do() RETURNS void LANGUAGE plpgsql AS {_BODY_TAG}{body}{_BODY_TAG}"
    )
    try:
        tree = json.loads(parse_plpgsql_json(wrapper))
    except (ParseError, ValueError):
        return [], 1
    queries: list[str] = []
    dynamic = _walk(tree, queries)
    return queries, dynamic


def _walk(node: object, queries: list[str]) -> int:
    """Collect the SQL of PLpgSQL_stmt_execsql nodes; count dynamic EXECUTEs."""
    dynamic = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "PLpgSQL_stmt_execsql":
                queries.append(str(value["sqlstmt"]["PLpgSQL_expr"]["query"]))
            elif key == "PLpgSQL_stmt_dynexecute":
                dynamic += 1
            else:
                dynamic += _walk(value, queries)
    elif isinstance(node, list):
        dynamic += sum(_walk(item, queries) for item in node)
    return dynamic
