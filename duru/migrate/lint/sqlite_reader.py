"""Read one SQLite statement: SQLite decides whether it parses, sqlglot says what it does.

Syntax is checked by SQLite itself: the statement is compiled (``EXPLAIN``, never
run) on a private in-memory database. Only grammar errors ("syntax error",
"incomplete input", "unrecognized token") count; "no such table" and the like
are expected, since the migration's tables do not exist there.

Facts come from sqlglot's tree (dialect "sqlite"). Statements whose grammar is
trivial or that sqlglot does not model (BEGIN/COMMIT/END/ROLLBACK, SAVEPOINT,
RELEASE, PRAGMA, VACUUM INTO, CREATE TRIGGER) are read from their leading
keywords; ``REPLACE INTO`` is read as the ``INSERT OR REPLACE INTO`` it means, and
``WITHOUT ROWID`` / ``STRICT`` table options are set aside before sqlglot reads a
CREATE TABLE. A valid statement sqlglot still cannot read is marked not
understood and yields no facts.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from duru.migrate.lint.facts import (
    AddColumn,
    ChangeRows,
    ConflictAction,
    CopyRows,
    CreateIndex,
    CreateTable,
    DropColumn,
    DropIndex,
    DropTable,
    Fact,
    Pragma,
    RenameColumn,
    RenameTable,
    Transaction,
    VacuumInto,
)
from duru.migrate.lint.reading import Reading
from duru.migrate.lint.sqlite_select import arg, ctes_of, shape_of, table_name

_GRAMMAR_ERRORS = ("syntax error", "incomplete input", "unrecognized token")
_LEADING_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_PRAGMA = re.compile(
    r"PRAGMA\s+(?:[\w\"`\[\]]+\s*\.\s*)?[\"`\[]?(\w+)[\"`\]]?\s*(?:=\s*(.+?)|\(\s*(.+?)\s*\))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_VACUUM_INTO = re.compile(r"VACUUM\b.*?\bINTO\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_TABLE_OPTIONS = re.compile(r"\)\s*(?:(?:WITHOUT\s+ROWID|STRICT)\s*,?\s*)+$", re.IGNORECASE)
_SELECT = re.compile(r"\bSELECT\b", re.IGNORECASE)
_REPLACE_INTO = re.compile(r"REPLACE\s+INTO\b", re.IGNORECASE)
_NOT_MATCHING = re.compile(r"\bNOT\s+(?:EXISTS|IN)\b", re.IGNORECASE)
_KEYWORD_FACTS: dict[str, tuple[Fact, ...]] = {
    "BEGIN": (Transaction("begin"),),
    "COMMIT": (Transaction("commit"),),
    "END": (Transaction("commit"),),
    "SAVEPOINT": (Transaction("savepoint"),),
    "RELEASE": (Transaction("release"),),
}

_quiet = contextvars.ContextVar("duru_lint_quiet_sqlglot", default=False)


class _QuietWhileLinting(logging.Filter):
    # sqlglot logs "falling back to parsing as a Command" for valid SQL it does not model;
    # the linter reports that itself, so the log line is only noise on the user's terminal.
    def filter(self, record: logging.LogRecord) -> bool:
        return not _quiet.get()


_FILTER = _QuietWhileLinting()


class SqliteReader:
    """Reads SQLite statements; holds a private in-memory database, so close it."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:")
        logger = logging.getLogger("sqlglot")
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, sql: str) -> Reading:
        """Facts of one statement, or the grammar error SQLite reports for it."""
        error = self._grammar_error(sql)
        if error is not None:
            return Reading(error=error)
        body = _LEADING_COMMENTS.sub("", sql, count=1)
        keyword_facts = _keyword_facts(body)
        if keyword_facts is not None:
            return Reading(keyword_facts)
        if not _may_have_facts(body):
            return Reading()
        token = _quiet.set(True)
        try:
            tree = sqlglot.parse_one(_normalise(body), read="sqlite")
        except SqlglotError:
            return Reading(understood=False)
        finally:
            _quiet.reset(token)
        if isinstance(tree, exp.Command):
            return Reading(understood=False)
        return Reading(tuple(_tree_facts(tree)))

    def _grammar_error(self, sql: str) -> str | None:
        if "\x00" in sql:
            return "a NUL character in the statement"
        body = re.sub(r"^EXPLAIN(?:\s+QUERY\s+PLAN)?\s+", "", sql.strip(), flags=re.IGNORECASE)
        try:
            self._db.execute("EXPLAIN " + body).close()
        except sqlite3.Error as error:
            message = str(error)
            if any(marker in message for marker in _GRAMMAR_ERRORS):
                return message
        return None


def _keyword_facts(body: str) -> tuple[Fact, ...] | None:
    words = body.split(None, 2)
    first = words[0].upper().rstrip(";") if words else ""
    second = words[1].upper() if len(words) > 1 else ""
    if first in _KEYWORD_FACTS:
        return _KEYWORD_FACTS[first]
    if first == "ROLLBACK":
        to = second == "TO" or (second == "TRANSACTION" and " TO " in f" {body.upper()} ")
        return (Transaction("rollback_to" if to else "rollback"),)
    if first == "PRAGMA":
        return _pragma(body)
    if first == "VACUUM":
        into = _VACUUM_INTO.match(body)
        return (VacuumInto(into.group(1)),) if into else ()
    if first == "EXPLAIN" or (first == "CREATE" and _creates_trigger(body)):
        return ()
    return None


def _may_have_facts(body: str) -> bool:
    """False for statements no rule reads (DML but INSERT ... SELECT): sqlglot is the slow part."""
    first = body.split(None, 1)[0].upper() if body.strip() else ""
    if first in ("INSERT", "REPLACE"):
        return _SELECT.search(body) is not None
    if first == "DELETE":
        return _NOT_MATCHING.search(body) is not None
    return first in ("WITH", "CREATE", "DROP", "ALTER")


def _creates_trigger(body: str) -> bool:
    return re.match(r"CREATE\s+(?:TEMP\w*\s+)?TRIGGER\b", body, re.IGNORECASE) is not None


def _pragma(body: str) -> tuple[Fact, ...]:
    match = _PRAGMA.match(body)
    if match is None:
        return ()
    value = match.group(2) or match.group(3)
    if value is not None:
        value = value.strip().strip("'\"").lower()
    return (Pragma(match.group(1).lower(), value),)


def _normalise(body: str) -> str:
    if _REPLACE_INTO.match(body):
        return "INSERT OR " + body
    return _TABLE_OPTIONS.sub(")", body) if body[:6].upper() == "CREATE" else body


def _tree_facts(tree: exp.Expr) -> Iterator[Fact]:
    reader = _TREE_READERS.get(type(tree))
    if reader is not None:
        yield from reader(tree)


def _insert(node: exp.Insert) -> Iterator[Fact]:
    query = node.expression
    if not isinstance(query, exp.Query):
        return
    shape = shape_of(query, ctes_of(arg(node, "with"), {}))
    yield CopyRows(
        target=table_name(node.this),
        sources=shape.sources,
        conflict=_conflict(node),
        star=shape.star,
        target_columns=isinstance(node.this, exp.Schema) and bool(node.this.expressions),
        filters=shape.filters,
        summary=_aggregates(query),
    )


def _aggregates(query: exp.Expr) -> bool:
    """GROUP BY, or an aggregate call (not a window) in the select list of `query`."""
    if not isinstance(query, exp.Select):
        return False
    if arg(query, "group") is not None:
        return True
    return any(
        isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window)
        for column in query.expressions
        for node in column.walk(prune=lambda n: isinstance(n, exp.Subquery))
    )


def _conflict(node: exp.Insert) -> ConflictAction | None:
    alternative = str(node.args.get("alternative") or "").upper()
    if alternative in ("IGNORE", "REPLACE"):
        return "ignore" if alternative == "IGNORE" else "replace"
    if node.args.get("ignore"):
        return "ignore"
    conflict = node.args.get("conflict")
    if conflict is None:
        return None
    action = str(conflict.args.get("action") or "").upper()
    return "nothing" if "NOTHING" in action else "update"


def _create(node: exp.Create) -> Iterator[Fact]:
    kind = str(node.args.get("kind") or "").upper()
    if kind == "INDEX" and isinstance(node.this, exp.Index):
        table = node.this.args.get("table")
        yield CreateIndex(table_name(node.this), table_name(table) if table else "", False)
    elif kind == "TABLE" and isinstance(node.expression, exp.Query):
        name = table_name(node.this)
        shape = shape_of(node.expression, ctes_of(arg(node.expression, "with"), {}))
        yield CreateTable(name, if_not_exists=bool(node.args.get("exists")))
        yield CopyRows(name, shape.sources, None, shape.star, True, shape.filters, created=True)
    elif kind == "TABLE":
        yield CreateTable(
            table_name(node.this),
            cascade_parents=tuple(_cascade_parents(node)),
            if_not_exists=bool(node.args.get("exists")),
        )


def _cascade_parents(node: exp.Create) -> Iterator[str]:
    for reference in node.find_all(exp.Reference):
        options = " ".join(str(option).upper() for option in reference.args.get("options") or ())
        if "ON DELETE CASCADE" in options:
            yield table_name(reference.this)


def _drop(node: exp.Drop) -> Iterator[Fact]:
    kind = str(node.args.get("kind") or "").upper()
    for table in node.args.get("tables") or ():
        if kind == "TABLE":
            yield DropTable(table_name(table))
        elif kind == "INDEX":
            yield DropIndex(table_name(table), False)


def _alter(node: exp.Alter) -> Iterator[Fact]:
    if str(node.args.get("kind") or "").upper() != "TABLE":
        return
    table = table_name(node.this)
    for action in node.args.get("actions") or ():
        if isinstance(action, exp.AlterRename):
            yield RenameTable(table, table_name(action.this))
        elif isinstance(action, exp.RenameColumn):
            yield RenameColumn(table, table_name(action.this), table_name(action.args["to"]))
        elif isinstance(action, exp.ColumnDef):
            yield _add_column(table, action)
        elif isinstance(action, exp.Drop) and str(action.args.get("kind")).upper() == "COLUMN":
            yield from (DropColumn(table, table_name(column)) for column in action.args["tables"])


def _add_column(table: str, column: exp.ColumnDef) -> AddColumn:
    kinds = [constraint.kind for constraint in column.constraints]
    # sqlglot reads an explicit NULL as NotNullColumnConstraint(allow_null=True).
    not_null = any(
        isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null")
        for kind in kinds
    )
    return AddColumn(
        table,
        table_name(column),
        None,
        not_null=not_null,
        has_default=any(isinstance(kind, exp.DefaultColumnConstraint) for kind in kinds),
    )


def _delete(node: exp.Delete) -> Iterator[Fact]:
    """A DELETE whose WHERE holds NOT EXISTS (...) or NOT IN (SELECT ...): an orphan cleanup."""
    where = node.args.get("where")
    orphans = where is not None and any(
        isinstance(n.this, exp.Exists) or (isinstance(n.this, exp.In) and n.this.args.get("query"))
        for n in where.find_all(exp.Not)
    )
    yield ChangeRows(table_name(node.this), "delete", where is not None, orphans)


_TREE_READERS: dict[type[Any], Callable[[Any], Iterator[Fact]]] = {
    exp.Alter: _alter,
    exp.Delete: _delete,
    exp.Create: _create,
    exp.Drop: _drop,
    exp.Insert: _insert,
}
