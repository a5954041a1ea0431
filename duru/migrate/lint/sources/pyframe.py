"""Where each SQL string of a Python file runs: order, transaction, and code never run forward.

The token scan (`python`) finds the strings; this pass reads the file's syntax
tree to say how they run, so that rules reason about execution, not source order:

- a string assigned to a module-level name (``CREATE = \"\"\"...\"\"\"``,
  ``STEPS = [...]``) runs where a function first uses that name, so it is placed
  there in the migration's order;
- strings in a ``downgrade`` (or ``down``) function are dropped: they undo the
  migration and never run on a deploy, so dropping the columns the upgrade added
  is no hazard;
- an alembic migration (``from alembic import op``) runs in one transaction
  (alembic's env.py wraps it), except inside ``with ...autocommit_block():``,
  which commits, runs its statements outside any transaction, and reopens one;
- statements inside ``with <x>.transaction():`` or ``with <x>.begin():``
  (psycopg, SQLAlchemy) share one transaction.

A file that does not parse keeps its strings in source order, unframed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, replace

from duru.migrate.lint.sources.base import Literal

AUTOCOMMIT = "autocommit"
_DOWNGRADES = {"downgrade", "down"}
_TRANSACTION_CALLS = {"transaction", "begin"}


@dataclass(frozen=True)
class _Block:
    first: int
    last: int
    frame: str


@dataclass(frozen=True)
class PythonFrames:
    """Literals in run order with their frames; `wrapped` for alembic migrations."""

    literals: tuple[Literal, ...]
    wrapped: bool


def frame_python(source: str, literals: tuple[Literal, ...]) -> PythonFrames:
    """Order, filter and frame `literals` (found in `source`) as described above."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return PythonFrames(literals, False)
    moved = _constant_uses(tree)
    downgrades = [_span(node) for node in _functions(tree) if node.name in _DOWNGRADES]
    blocks = list(_blocks(tree))
    placed = []
    for position, literal in enumerate(literals):
        line = moved.get(literal.open_line, literal.open_line)
        if any(first <= line <= last for first, last in downgrades):
            continue
        frame = _innermost(blocks, line)
        placed.append(((line, position), replace(literal, frame=frame)))
    placed.sort(key=lambda item: item[0])
    return PythonFrames(tuple(literal for _, literal in placed), _is_alembic(tree))


def _span(node: ast.AST) -> tuple[int, int]:
    first = getattr(node, "lineno", 0)
    return first, getattr(node, "end_lineno", None) or first


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _constant_uses(tree: ast.Module) -> dict[int, int]:
    """Source line of each string in a module-level assignment -> line of its first use."""
    first_use: dict[str, int] = {}
    for function in _functions(tree):
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                line = first_use.get(node.id)
                if line is None or node.lineno < line:
                    first_use[node.id] = node.lineno
    moved: dict[int, int] = {}
    for statement in tree.body:
        names = _assigned_names(statement)
        use = min((first_use[name] for name in names if name in first_use), default=None)
        if use is None:
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Constant | ast.JoinedStr):
                moved[node.lineno] = use
    return moved


def _assigned_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return []
    return [target.id for target in targets if isinstance(target, ast.Name)]


def _blocks(tree: ast.Module) -> Iterator[_Block]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.With | ast.AsyncWith):
            continue
        for item in node.items:
            frame = _with_frame(item.context_expr, node.lineno)
            if frame is not None:
                first, last = _span(node)
                yield _Block(first, last, frame)


def _with_frame(expr: ast.expr, line: int) -> str | None:
    if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Attribute):
        return None
    if expr.func.attr == "autocommit_block":
        return AUTOCOMMIT
    if expr.func.attr in _TRANSACTION_CALLS:
        return f"transaction@{line}"
    return None


def _innermost(blocks: list[_Block], line: int) -> str | None:
    inside = [block for block in blocks if block.first <= line <= block.last]
    return max(inside, key=lambda block: block.first).frame if inside else None


def _is_alembic(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "alembic":
            return True
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "alembic" for alias in node.names
        ):
            return True
    return False
