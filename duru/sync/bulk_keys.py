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
role, a user with rows already, or tables whose live foreign keys are not exactly the
layout's or that carry a trigger of their own (``replica`` would silence it too: a
migration's sync trigger, say) keep PostgreSQL's per-row checks.
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
        """Turn the triggers off when allowed; True when they are off.

        Allowed for a superuser, when the user has no rows yet, and when the loaded
        tables carry exactly the foreign keys of duru's layout and no trigger of
        their own: ``replica`` would silence any such trigger too (a migration's
        sync trigger, say), and a key the layout does not name would go unchecked.
        """
        superuser = self.conn.execute("SELECT current_setting('is_superuser')").fetchone()
        if superuser is None or superuser[0] != "on":
            return False
        if not self._catalog_is_the_layout():
            return False
        if any(self._rows_of_user(t) for t in self.tables):
            return False
        self.conn.execute("SET LOCAL session_replication_role = replica")
        self.active = True
        return True

    def wrote(self, table: ServerTable, rows: int) -> None:
        self.written[table.name] += rows

    def check(self) -> None:
        """Every written row is the user's and has its parents; SyncError otherwise.

        One scan per table: its rows of the user, each foreign key's parent joined
        (parents are unique, so a join adds no row): how many rows there are, and per
        key how many have it set with no parent. A key that is the user id alone
        (the account) is the same for every row: one lookup.
        """
        if not self.active:
            return
        self.conn.execute("SET LOCAL session_replication_role = origin")
        self.active = False
        owners: set[tuple[str, tuple[str, ...]]] = set()
        for table in self.tables:
            wrote = self.written[table.name]
            keys = [fk for fk in table.foreign_keys if fk.columns != (USER_ID,)]
            if wrote:
                owners |= {
                    (fk.ref_table, fk.ref_columns)
                    for fk in table.foreign_keys
                    if fk.columns == (USER_ID,)
                }
            found, *orphans = self._scan(table, keys)
            if found != wrote:
                raise SyncError(
                    f"{table.name}: the upload wrote {wrote} rows but the server holds {found}"
                    " of this user; nothing was uploaded"
                )
            for fk, missing in zip(keys, orphans, strict=True):
                if missing:
                    raise SyncError(
                        f"{table.name}: {missing} rows have no {fk.ref_table} row for"
                        f" ({', '.join(fk.columns)}) (foreign key {fk.name}); nothing was uploaded"
                    )
        for ref_table, ref_columns in sorted(owners):
            if not self._exists(ref_table, ref_columns):
                raise SyncError(f"no {ref_table} row for this user; nothing was uploaded")

    def _scan(self, table: ServerTable, keys: Sequence[ServerForeignKey]) -> list[int]:
        """[rows of the user, then per key the rows with it set (MATCH SIMPLE) and no parent]."""
        joins: list[sql.Composable] = []
        counts: list[sql.Composable] = [sql.SQL("count(*)")]
        for n, fk in enumerate(keys):
            parent = sql.Identifier(f"p{n}")
            same = sql.SQL(" AND ").join(
                sql.SQL("{}.{} = c.{}").format(parent, sql.Identifier(p), sql.Identifier(c))
                for c, p in zip(fk.columns, fk.ref_columns, strict=True)
            )
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {}").format(
                    sql.Identifier(fk.ref_table), parent, same
                )
            )
            keyed = sql.SQL(" AND ").join(
                sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
            )
            counts.append(
                sql.SQL("count(*) FILTER (WHERE {} AND {}.{} IS NULL)").format(
                    keyed, parent, sql.Identifier(fk.ref_columns[0])
                )
            )
        query = sql.SQL("SELECT {} FROM {} AS c {} WHERE c.{} = %s").format(
            sql.SQL(", ").join(counts),
            sql.Identifier(table.name),
            sql.SQL(" ").join(joins),
            sql.Identifier(USER_ID),
        )
        found = self.conn.execute(query, (self.user_id,)).fetchone()
        assert found is not None
        return [int(v) for v in found]

    def _exists(self, table: str, columns: tuple[str, ...]) -> bool:
        """A row of ``table`` whose ``columns`` (the user id) are this user's."""
        same = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
        query = sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {})").format(
            sql.Identifier(table), same
        )
        found = self.conn.execute(query, [self.user_id] * len(columns)).fetchone()
        return bool(found and found[0])

    def _catalog_is_the_layout(self) -> bool:
        """The live foreign keys of the tables are the layout's, and no user trigger exists."""
        names = [t.name for t in self.tables]
        found = self.conn.execute(
            "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c"
            " WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])",
            (names,),
        ).fetchall()
        wanted = {(t.name, fk.name) for t in self.tables for fk in t.foreign_keys}
        if {(str(r[0]), str(r[1])) for r in found} != wanted:
            return False
        triggers = self.conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
            " AND tgrelid = ANY(%s::regclass[])",
            (names,),
        ).fetchone()
        return triggers is not None and int(triggers[0]) == 0

    def _rows_of_user(self, table: ServerTable) -> int:
        found = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                sql.Identifier(table.name), sql.Identifier(USER_ID)
            ),
            (self.user_id,),
        ).fetchone()
        return 0 if found is None else int(found[0])
