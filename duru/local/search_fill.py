"""Index many new rows for search in one statement instead of one trigger call per row.

FTS5 fed by the insert trigger costs about three times the CPU of one
``INSERT INTO notes_fts ... SELECT`` over the same rows (300 vs 100 us per note of
1.5 KB on the benchmark machine), and a first pull inserts tens of thousands of notes.
``indexed_in_bulk`` drops the insert trigger, lets the block insert, indexes every
row it added with one statement, and puts the trigger back, all inside the caller's
transaction: SQLite's schema changes are transactional, so a failure or a kill at any
point leaves either the rows, their index entries and the trigger, or none of it
(the old trigger with the old rows). Only inserts may run in the block: an update or
delete there would skip the trigger that removes the old index entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from duru.local.db import Database
from duru.local.schema import DOC_ID, create_search, fts_table, quote, where_sql
from duru.model import Entity

BULK_INDEX_MIN = 64  # below this, the trigger's per-row cost is smaller than the DDL's
# SQLite numbers a new row max(rowid) + 1 until the largest rowid is taken, then at
# random: only below this bound are the new rows exactly those above the old maximum.
_ROWID_HEADROOM = 2**62


@contextmanager
def indexed_in_bulk(db: Database, e: Entity, rows: int) -> Iterator[None]:
    """The block's inserts of ``rows`` rows into ``e`` are indexed at its end, in one
    savepoint (a failure in the block rolls back its rows and keeps the trigger).

    A plain pass-through when ``e`` has no search table, when ``rows`` is under
    ``BULK_INDEX_MIN``, or when the table's row numbers are near their end.
    """
    if e.search is None or rows < BULK_INDEX_MIN:
        yield
        return
    table, fts = quote(e.table), quote(fts_table(e))
    with db.transaction():
        last = db.conn.execute(f"SELECT max({DOC_ID}) FROM {table}").fetchone()[0]
        if last is not None and last >= _ROWID_HEADROOM:
            yield
            return
        db.conn.execute(f"DROP TRIGGER {quote(fts_table(e) + '_ai')}")
        yield
        cols = ", ".join(quote(c) for c in e.search.fields)
        live = where_sql(e, e.search.only) or "1"
        db.conn.execute(
            f"INSERT INTO {fts} (rowid, {cols}) SELECT {DOC_ID}, {cols} FROM {table}"
            f" WHERE {DOC_ID} > ? AND {live} ORDER BY {DOC_ID}",
            (-1 if last is None else last,),
        )
        db.conn.execute(create_search(e)[1])
