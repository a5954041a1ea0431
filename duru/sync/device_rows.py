"""Reading a device database's rows in chunks, parents first, and writing rows back.

The server may check foreign keys row by row as each chunk lands (all but a first
upload, see ``bulk_keys``), so an upload sends a folder before its subfolders and a task
before its subtasks. Entities that reference
themselves are therefore read roots first (in table order), then the rows below them
breadth-first (recursive CTE from the roots' children, ordered by depth, then key); the
others in table order. Either order is the same on every read of an unchanged file, so
several readers can split the rows by position. Column lists come from the model.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import chain, islice
from pathlib import Path

from duru.errors import ConstraintViolation, StoreError
from duru.local.constraint import explain_integrity_error
from duru.local.db import Database
from duru.local.rows import columns
from duru.local.schema import quote
from duru.model import Entity, Field, entity


def self_reference(e: Entity) -> Field | None:
    """The field by which rows of ``e`` point at other rows of ``e`` (a tree), or None."""
    found = [f for f in e.foreign_keys if f.references == e.name]
    if len(found) > 1:
        raise NotImplementedError(f"{e.name} has two self references; pick an order for them")
    return found[0] if found else None


def count_rows(conn: sqlite3.Connection, e: Entity) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {quote(e.table)}").fetchone()[0])


def read_chunks(
    conn: sqlite3.Connection, e: Entity, chunk_rows: int, total: int
) -> Iterator[list[tuple[object, ...]]]:
    """Every row of ``e`` as tuples of its model fields, parents before children.

    ``total`` is ``count_rows`` read in the same snapshot. Raises ConstraintViolation at
    the end when fewer rows came out: those sit in a parent cycle or under a missing
    parent, so no order puts them after their parent (they are reported, not skipped).
    """
    seen = 0
    rows = chain.from_iterable(conn.execute(sql) for sql in _select_sql(e.name))
    while batch := list(islice(rows, chunk_rows)):
        seen += len(batch)
        yield batch
    if seen != total:
        parent = self_reference(e)
        raise ConstraintViolation(
            f"{total - seen} of {total} {e.table} rows have a parent cycle or a missing parent"
            f" ({parent.name if parent else e.key}); they cannot be sent parents first"
        )


def read_own_chunks(
    conn: sqlite3.Connection, e: Entity, chunk_rows: int, total: int, worker: int, workers: int
) -> Iterator[tuple[int, list[tuple[object, ...]]]]:
    """Chunks ``worker, worker + workers, ...`` of ``e`` (index, rows), reading no others.

    For a sealer among ``workers``: an entity without a tree is read in rowid order by
    keyset, and a chunk another worker seals is passed over by its rowids alone (no row
    is built), so the workers split the reading too. Every worker splits the rows at the
    same places, in the snapshot they share. A tree keeps ``read_chunks``'s order
    (parents first) and is read whole. Raises StoreError when a chunk comes up short.
    """
    if self_reference(e) is not None:
        for index, batch in enumerate(read_chunks(conn, e, chunk_rows, total)):
            if index % workers == worker:
                yield index, batch
        return
    table = quote(e.table)
    after: int | None = None  # the last rowid of the chunk before (None: the first chunk)
    left = total
    for index in range(-(-total // chunk_rows)):
        want = min(chunk_rows, left)
        where, bound = ("", ()) if after is None else ("WHERE rowid > ? ", (after,))
        if index % workers == worker:
            rows = conn.execute(
                f"SELECT rowid, {columns(e)} FROM {table} {where}ORDER BY rowid LIMIT ?",
                (*bound, want),
            ).fetchall()
            if len(rows) != want:
                raise _short(e, total)
            after = rows[-1][0]
            yield index, [r[1:] for r in rows]
        else:
            found = conn.execute(
                f"SELECT rowid FROM {table} {where}ORDER BY rowid LIMIT 1 OFFSET ?",
                (*bound, want - 1),
            ).fetchone()
            if found is None:
                raise _short(e, total)
            after = found[0]
        left -= want


def _short(e: Entity, total: int) -> StoreError:
    return StoreError(f"{e.table} no longer has {total} rows; run the upload again")


def insert_rows(db: Database, e: Entity, rows: Sequence[Sequence[object]]) -> None:
    """Insert rows of ``e`` (model fields in order, device storage form), no outbox rows.

    For rows that are already stored elsewhere (a download): the values are written as
    they are, not re-encoded. Raises ConstraintViolation when SQLite refuses one.
    """
    try:
        db.conn.executemany(_insert_sql(e.name), rows)
    except sqlite3.IntegrityError as exc:
        raise explain_integrity_error(e, exc) from exc


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a device database (another process may hold it open)."""
    conn = sqlite3.connect(
        f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
    )
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around the block: every query in it sees the same database."""
    conn.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        conn.execute("COMMIT")


@cache
def _select_sql(name: str) -> tuple[str, ...]:
    """The queries whose rows, one after the other, are every row parents first."""
    e = entity(name)
    parent = self_reference(e)
    table = quote(e.table)
    if parent is None:
        return (f"SELECT {columns(e)} FROM {table}",)
    key, up, by_parent = quote(e.key), quote(parent.name), _children_index(e, parent)
    # NOT INDEXED: a plain scan in table order, cheaper than visiting rows through the
    # parent index (most rows are roots).
    roots = f"SELECT {columns(e)} FROM {table} NOT INDEXED WHERE {up} IS NULL"
    below = (
        f"WITH RECURSIVE tree(k, depth) AS ("
        f" SELECT c.{key}, 1 FROM {table} c{by_parent} JOIN {table} p ON p.{key} = c.{up}"
        f" WHERE c.{up} IS NOT NULL AND p.{up} IS NULL"
        f" UNION ALL SELECT c.{key}, tree.depth + 1"
        f" FROM tree JOIN {table} c{by_parent} ON c.{up} = tree.k)"
        f" SELECT {columns(e, 'x')} FROM tree JOIN {table} x ON x.{key} = tree.k"
        f" ORDER BY tree.depth, tree.k"
    )
    return roots, below


def _children_index(e: Entity, parent: Field) -> str:
    """``INDEXED BY`` the index that leads with the parent field, if the model declares one.

    When no row has a parent, ANALYZE tells SQLite that index is useless and it scans the
    whole table for every row instead: quadratic. The hint keeps each step one lookup.
    """
    for ix in e.indexes:
        if ix.side != "remote" and not ix.where and ix.columns[0] == parent.name:
            return f" INDEXED BY {quote(e.index_name(ix))}"
    return ""


@cache
def _insert_sql(name: str) -> str:
    e = entity(name)
    marks = ", ".join("?" for _ in e.fields)
    return f"INSERT INTO {quote(e.table)} ({columns(e)}) VALUES ({marks})"
