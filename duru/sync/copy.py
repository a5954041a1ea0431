"""Set-based writes to a server table: binary COPY into a staging table, then one upsert.

    stage = StagedUpsert(conn, server_table(NOTE), columns)
    stage.create()                      # CREATE TEMP TABLE ... (LIKE notes) ON COMMIT DROP
    stage.write(rows)                   # COPY ... (FORMAT BINARY); INSERT ... ON CONFLICT; TRUNCATE
    stage.write_copy_data(data)         # the same, for rows CopyFormatter already formatted

A chunk costs three statements whatever its size, and the server applies it as one
``INSERT ... SELECT ... ON CONFLICT (primary key) DO UPDATE``, so foreign keys, unique
constraints and row level security are checked exactly as for single-row writes.

``StagedUpsert(..., first_write=True)`` checks at ``create()`` whether the table holds any
row of the transaction's user. When it holds none, nothing can conflict, so chunks go in
with a plain ``INSERT ... SELECT`` (no speculative insertion), and, when row level
security does not apply to the connected role (a superuser, as on the embedded server),
COPY writes straight into the table (PostgreSQL refuses COPY FROM under row level
security). Foreign keys, unique and CHECK constraints are checked per row either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Connection, Cursor, sql

from duru.errors import UsageError
from duru.remote.layout import USER_ID, ServerTable
from duru.remote.schema import CURRENT_USER_SQL

STAGE_PREFIX = "duru_stage_"


class StagedUpsert:
    """Upserts chunks of rows into one server table through a temporary staging table.

    ``columns`` are the table columns each row carries, in row order; the others take
    their defaults (NULL for a nullable column), on insert and on update alike: a row
    that conflicts on the primary key is replaced whole, so an upsert also clears, say, a
    tombstone. Use inside a transaction: the staging table lives until the transaction
    ends (``ON COMMIT DROP``).

    ``first_write``: see the module docstring. The check holds only while no other writer
    adds rows of this user, as when the caller holds the user's change sequence lock
    (``duru_reserve_change_seqs``); a row that appears anyway makes a chunk fail with a
    unique violation, never overwrites it.
    """

    def __init__(
        self,
        conn: Connection[Any],
        table: ServerTable,
        columns: Sequence[str],
        *,
        first_write: bool = False,
    ) -> None:
        unknown = [c for c in columns if table.column(c) is None]
        if unknown:
            raise UsageError(f"{table.name} has no column(s) {', '.join(unknown)}")
        self.conn = conn
        self.table = table
        self.columns = tuple(columns)
        self.types = [table.column(c).type for c in self.columns]  # type: ignore[union-attr]
        self.stage = f"{STAGE_PREFIX}{table.name}"
        self._sql = _Statements(table, self.stage, self.columns)
        self._first_write = first_write
        self.mode = "upsert"

    def create(self) -> None:
        """Create the staging table (a no-op when this transaction already has it).

        With ``first_write``, also choose how chunks go in (``mode``: "upsert", "insert"
        or "copy": COPY straight into the table, no staging table made).
        """
        if self._first_write and self._user_has_no_rows():
            self.mode = "insert" if self._row_security_active() else "copy"
        if self.mode == "copy":
            return
        self.conn.execute(self._sql.create)
        self.conn.execute(self._sql.truncate)

    def write(self, rows: Iterable[Sequence[object]]) -> int:
        """COPY ``rows`` into the staging table and upsert them; the number of rows written.

        Rows must not repeat a primary key within one call (PostgreSQL refuses to update
        a row twice in one statement). Raises psycopg errors as the server reports them.
        """
        cur = self.conn.cursor()
        with cur.copy(self._copy_sql()) as copy:
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)
        return self._upsert(cur)

    def write_copy_data(self, data: bytes) -> int:
        """Like ``write``, for rows already formatted as one binary COPY stream.

        ``data`` is what ``CopyFormatter(self.types).format(rows)`` returns (signature,
        rows, trailer); the server refuses anything else.
        """
        cur = self.conn.cursor()
        with cur.copy(self._copy_sql()) as copy:
            copy.write(data)
        return self._upsert(cur)

    def _copy_sql(self) -> sql.Composed:
        return self._sql.copy_into if self.mode == "copy" else self._sql.copy

    def _upsert(self, cur: Cursor[Any]) -> int:
        if self.mode == "copy":
            return cur.rowcount
        statement = self._sql.insert if self.mode == "insert" else self._sql.upsert
        written = cur.execute(statement).rowcount
        cur.execute(self._sql.truncate)
        return written

    def _user_has_no_rows(self) -> bool:
        found = self.conn.execute(self._sql.any_row).fetchone()
        return found is not None and not found[0]

    def _row_security_active(self) -> bool:
        found = self.conn.execute("SELECT row_security_active(%s)", (self.table.name,)).fetchone()
        return found is None or bool(found[0])


class _Statements:
    def __init__(self, table: ServerTable, stage: str, columns: tuple[str, ...]) -> None:
        target, staged = sql.Identifier(table.name), sql.Identifier(stage)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        every = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        key = table.primary_key.columns
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name))
            for c in table.columns
            if c.name not in key
        )
        self.create = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
        ).format(staged, target)
        self.truncate = sql.SQL("TRUNCATE {}").format(staged)
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(staged, cols)
        self.copy_into = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, cols)
        self.any_row = sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} = {})").format(
            target, sql.Identifier(USER_ID), sql.SQL(CURRENT_USER_SQL)
        )
        self.insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, every, every, staged
        )
        self.upsert = sql.SQL(
            "INSERT INTO {target} ({every}) SELECT {every} FROM {staged}"
            " ON CONFLICT ({key}) DO UPDATE SET {updates}"
        ).format(
            target=target,
            every=every,
            staged=staged,
            key=sql.SQL(", ").join(map(sql.Identifier, key)),
            updates=updates,
        )
