"""The import's write path: model rows and their outbox ops, in bulk.

``Database.insert`` wraps every row in a savepoint of its own and writes its
outbox op with a second statement; for a file of hundreds of thousands of
rows that doubled the time of the whole import. :class:`BulkWriter` writes
the same thing: each row goes through the model's ``complete_row`` (defaults
and value checks) and one INSERT, and its outbox op (an ``upsert`` based on
version 0, as ``Database.insert`` makes) is written in batches. A row SQLite
refuses needs no savepoint: a failed single-row INSERT undoes itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from duru.local.constraint import explain_integrity_error
from duru.local.db import Database
from duru.local.legacy.values import random_id
from duru.local.schema import quote
from duru.model import Entity, Row, complete_row

_OUTBOX_INSERT = (
    "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_BATCH = 2000


class BulkWriter:
    """Writes entity rows and their outbox ops inside one open transaction.

    Call :meth:`flush` before the transaction ends; until then some outbox
    ops are only queued.
    """

    def __init__(self, db: Database, now: int) -> None:
        self.db = db
        self.now = now
        self._ops: list[Sequence[object]] = []
        self._sql: dict[str, str] = {}

    def insert(self, entity: Entity, values: Row) -> Row:
        """Write one row of ``entity`` and queue its outbox op.

        Raises InvalidValue for a value the model refuses, ConstraintViolation
        for a row SQLite refuses (unknown parent, duplicate key).
        """
        row = complete_row(entity, values, self.now)
        try:
            self.db.conn.execute(self._insert_sql(entity), list(row.values()))
        except sqlite3.IntegrityError as exc:
            raise explain_integrity_error(entity, exc) from exc
        key = str(row[entity.key])
        self._ops.append((random_id(), entity.name, key, "upsert", int(row["version"]), self.now))
        if len(self._ops) >= _BATCH:
            self.flush()
        return row

    def flush(self) -> None:
        """Write the queued outbox ops."""
        if self._ops:
            self.db.conn.executemany(_OUTBOX_INSERT, self._ops)
            self._ops.clear()

    def _insert_sql(self, entity: Entity) -> str:
        sql = self._sql.get(entity.name)
        if sql is None:
            cols = ", ".join(quote(n) for n in entity.field_names)
            marks = ", ".join("?" for _ in entity.fields)
            sql = self._sql[entity.name] = (
                f"INSERT INTO {quote(entity.table)} ({cols}) VALUES ({marks})"
            )
        return sql
