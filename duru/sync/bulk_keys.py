"""Foreign keys of a first upload, checked once per key instead of once per row.

PostgreSQL checks a foreign key with a trigger per inserted row: a lookup of the
parent row, locked ``FOR KEY SHARE``, through SPI. For a first upload (hundreds of
thousands of rows into tables that hold none of the user's) that is most of the
server's work. When the connected role may skip those triggers (a superuser, as on
the embedded server: ``session_replication_role = replica``, for this transaction
only), :class:`BulkKeys` turns them off and checks the same keys afterwards in one
anti-join per foreign key, before the transaction commits:

- every row of the user in a loaded table must be one this upload wrote (the
  table held none before: :func:`BulkKeys.begin` checks, under the account row's
  lock), and there must be as many as it wrote, so the checked set is exactly the
  written set;
- for each foreign key (MATCH SIMPLE, as declared: a row with a NULL key column
  passes), no written row may lack its parent.

A failure raises SyncError and the transaction rolls back: the server keeps
nothing. Unique, NOT NULL and CHECK constraints are not triggers and still hold
per row. The parents are the rows this transaction wrote (invisible to others
until it commits) or the account row, which the upload holds locked (its change
sequence is reserved), so nothing can delete a parent under the check. Any other
role, or a user with rows already, keeps PostgreSQL's per-row checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection, sql

from duru.errors import SyncError
from duru.remote.layout import USER_ID, ServerForeignKey, ServerTable


class BulkKeys:
    """Per-row foreign key triggers off for one first upload, and the keys checked at the end.

    ``begin()`` says whether the triggers are off; ``wrote(table, rows)`` records
    each chunk; ``check()`` verifies every key and turns the triggers back on.
    """

    def __init__(self, conn: Connection[Any], user_id: str, tables: Sequence[ServerTable]) -> None:
        self.conn = conn
        self.user_id = user_id
        self.tables = tuple(tables)
        self.active = False
        self.written: dict[str, int] = {t.name: 0 for t in self.tables}

    def begin(self) -> bool:
        """Turn the triggers off when allowed (a superuser; the user has no rows yet)."""
        superuser = self.conn.execute("SELECT current_setting('is_superuser')").fetchone()
        if superuser is None or superuser[0] != "on":
            return False
        if any(self._rows_of_user(t) for t in self.tables):
            return False
        self.conn.execute("SET LOCAL session_replication_role = replica")
        self.active = True
        return True

    def wrote(self, table: ServerTable, rows: int) -> None:
        self.written[table.name] += rows

    def check(self) -> None:
        """Every written row is the user's and has its parents; SyncError otherwise."""
        if not self.active:
            return
        self.conn.execute("SET LOCAL session_replication_role = origin")
        self.active = False
        for table in self.tables:
            found, wrote = self._rows_of_user(table), self.written[table.name]
            if found != wrote:
                raise SyncError(
                    f"{table.name}: the upload wrote {wrote} rows but the server holds {found}"
                    " of this user; nothing was uploaded"
                )
        for table in self.tables:
            if not self.written[table.name]:
                continue
            for fk in table.foreign_keys:
                missing = self._orphans(table, fk)
                if missing:
                    raise SyncError(
                        f"{table.name}: {missing} rows have no {fk.ref_table} row for"
                        f" ({', '.join(fk.columns)}) (foreign key {fk.name}); nothing was uploaded"
                    )

    def _rows_of_user(self, table: ServerTable) -> int:
        found = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                sql.Identifier(table.name), sql.Identifier(USER_ID)
            ),
            (self.user_id,),
        ).fetchone()
        return 0 if found is None else int(found[0])

    def _orphans(self, table: ServerTable, fk: ServerForeignKey) -> int:
        """Rows of the user whose key (all columns set: MATCH SIMPLE) has no parent row."""
        child, parent = sql.Identifier("c"), sql.Identifier("p")
        keyed = sql.SQL(" AND ").join(
            sql.SQL("{}.{} IS NOT NULL").format(child, sql.Identifier(c)) for c in fk.columns
        )
        same = sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(parent, sql.Identifier(p), child, sql.Identifier(c))
            for c, p in zip(fk.columns, fk.ref_columns, strict=True)
        )
        query = sql.SQL(
            "SELECT count(*) FROM {table} AS c WHERE c.{user} = %s AND {keyed}"
            " AND NOT EXISTS (SELECT FROM {ref} AS p WHERE {same})"
        ).format(
            table=sql.Identifier(table.name),
            user=sql.Identifier(USER_ID),
            keyed=keyed,
            ref=sql.Identifier(fk.ref_table),
            same=same,
        )
        found = self.conn.execute(query, (self.user_id,)).fetchone()
        return 0 if found is None else int(found[0])
