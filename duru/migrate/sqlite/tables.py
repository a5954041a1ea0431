"""What a device file says about its tables: columns, keys, foreign keys, row counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from duru.errors import MigrationError, ValidationFailed
from duru.migrate.ops import quote


def live_columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The stored columns of ``table`` as SQLite reports them, in table order."""
    cur = conn.execute(f"PRAGMA table_xinfo({quote(table)})")
    cols = tuple(str(r[1]) for r in cur.fetchall() if r[6] in (0, 1))
    if not cols:
        raise MigrationError(f"no table {table}")
    return cols


@dataclass(frozen=True)
class ForeignKey:
    column: str
    parent: str
    parent_column: str


def foreign_keys(conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
    """Single-column foreign keys of ``table`` (parent column defaulted to the parent's key)."""
    out = []
    for row in conn.execute(f"PRAGMA foreign_key_list({quote(table)})").fetchall():
        parent, column, pcol = str(row[2]), str(row[3]), row[4]
        out.append(ForeignKey(column, parent, str(pcol) if pcol else primary_key(conn, parent)))
    return out


def child_tables(conn: sqlite3.Connection, table: str) -> list[str]:
    """Tables (other than ``table``) with a foreign key to ``table``."""
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND sql NOT LIKE 'CREATE VIRTUAL%'"
        )
    ]
    return [
        n for n in names if n != table and any(fk.parent == table for fk in foreign_keys(conn, n))
    ]


def check_foreign_keys(conn: sqlite3.Connection, tables: Sequence[str]) -> None:
    """ValidationFailed when a row of ``tables`` references a row that does not exist."""
    problems: dict[str, int] = {}
    for table in tables:
        for row in conn.execute(f"PRAGMA foreign_key_check({quote(table)})").fetchall():
            key = f"{row[0]} -> {row[2]}"
            problems[key] = problems.get(key, 0) + 1
    if problems:
        listed = ", ".join(f"{k}: {n} rows" for k, n in sorted(problems.items()))
        raise ValidationFailed(f"foreign_key_check failed ({listed}); the change was rolled back")


def count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])


def max_rowid(conn: sqlite3.Connection, table: str) -> int | None:
    found = conn.execute(f"SELECT max(rowid) FROM {quote(table)}").fetchone()[0]
    return None if found is None else int(found)


def quarantined(conn: sqlite3.Connection, source: str, table: str) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM quarantine WHERE source = ? AND source_table = ?",
            (source, table),
        ).fetchone()[0]
    )


def strict_table(conn: sqlite3.Connection, table: str) -> bool:
    found = conn.execute("SELECT strict FROM pragma_table_list WHERE name = ?", (table,)).fetchone()
    return bool(found and found[0])


def unique_not_null(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """True when ``column`` is NOT NULL and alone in a unique index of ``table``."""
    info = {str(r[1]): bool(r[3]) for r in conn.execute(f"PRAGMA table_info({quote(table)})")}
    if not info.get(column):
        return False
    for index in conn.execute(f"PRAGMA index_list({quote(table)})").fetchall():
        if not index[2]:
            continue
        cols = [str(r[2]) for r in conn.execute(f"PRAGMA index_info({quote(str(index[1]))})")]
        if cols == [column]:
            return True
    return False


def primary_key(conn: sqlite3.Connection, table: str) -> str:
    for row in conn.execute(f"PRAGMA table_info({quote(table)})").fetchall():
        if row[5] == 1:
            return str(row[1])
    return "rowid"
