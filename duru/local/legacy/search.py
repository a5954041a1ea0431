"""Building the full-text index once, after a bulk load, instead of row by row.

The device schema keeps ``notes_fts`` right with triggers. Each trigger runs
inside its statement's savepoint, and FTS5 writes its pending terms to disk at
every savepoint, so a bulk load through the triggers writes one tiny index
segment per note (a 100k-note import spent most of its time there). During an
import the triggers are set aside and the index is filled by one statement
over the same rows the triggers would have indexed; then the triggers are put
back exactly as they were. All of it runs in the import's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from duru.errors import UsageError
from duru.local.db import Database
from duru.local.schema import DOC_ID, fts_table, quote, where_sql
from duru.model import ENTITIES, Entity


@contextmanager
def search_index_deferred(db: Database) -> Iterator[None]:
    """Suspend the search triggers in the block; index the rows when it ends well.

    Must run inside ``db.transaction()``: when the block raises, the
    transaction's rollback brings the triggers back.
    """
    if not db.in_transaction:
        raise UsageError("search_index_deferred needs an open transaction")
    saved = [(e, _triggers(db, e)) for e in ENTITIES if e.search is not None]
    for _, triggers in saved:
        for name, _sql in triggers:
            db.conn.execute(f"DROP TRIGGER {quote(name)}")
    yield
    for e, triggers in saved:
        db.conn.execute(_index_all(e))
        for _name, sql in triggers:
            db.conn.execute(sql)


def _triggers(db: Database, e: Entity) -> list[tuple[str, str]]:
    # The search triggers are the ones named after the search table.
    found = db.rows(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ? ORDER BY name",
        [e.table],
    )
    prefix = fts_table(e) + "_"
    return [(str(r["name"]), str(r["sql"])) for r in found if str(r["name"]).startswith(prefix)]


def _index_all(e: Entity) -> str:
    assert e.search is not None
    cols = ", ".join(quote(c) for c in e.search.fields)
    where = where_sql(e, e.search.only) or "1"
    return (
        f"INSERT INTO {quote(fts_table(e))} (rowid, {cols}) "
        f"SELECT {DOC_ID}, {cols} FROM {quote(e.table)} WHERE {where}"
    )
