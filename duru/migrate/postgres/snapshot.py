"""Snapshots of what a destructive step is about to remove, verified, for rollback.

Before a step drops a column (or a table), the run copies the rows it is
about to lose into ``duru_snapshot_<run>_<table>``: the table's primary key
and the doomed columns, in one REPEATABLE READ transaction that also counts
both sides, so the copy is complete and consistent. A rollback puts the
values back from it; a finished run drops it (unless told to keep it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.errors import MigrationError, NotFound, ValidationFailed
from duru.migrate.ops import quote
from duru.migrate.postgres.names import identifier

SNAPSHOT_PREFIX = "duru_snapshot_"


@dataclass(frozen=True)
class Snapshot:
    """A verified copy: its table, what it copied, and how many rows."""

    name: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.name,
            "table": self.table,
            "key": list(self.key),
            "columns": [[c.name, c.type, c.not_null] for c in self.columns],
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        cols = tuple(Column(str(n), str(t), bool(nn)) for n, t, nn in data["columns"])
        return cls(data["snapshot"], data["table"], tuple(data["key"]), cols, int(data["rows"]))


@dataclass(frozen=True)
class Column:
    """A copied column as it was: name, type as format_type prints it, NOT NULL or not."""

    name: str
    type: str
    not_null: bool


def snapshot_name(run_id: str, table: str) -> str:
    """``duru_snapshot_<run>_<table>``, shortened with a hash when past 63 characters."""
    token = re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")
    return identifier(f"{SNAPSHOT_PREFIX}{token}_{table}")


def primary_key(conn: Connection[Any], table: str) -> tuple[str, ...]:
    """The primary key columns of ``table`` in key order; NotFound when it has none."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n",
        (quote(table),),
    ).fetchall()
    if not rows:
        raise NotFound(f"table {table} has no primary key; a snapshot needs one to restore by")
    return tuple(str(r[0]) for r in rows)


def take_snapshot(
    conn: Connection[Any], name: str, table: str, columns: tuple[str, ...]
) -> Snapshot:
    """Copy the key and ``columns`` of every row of ``table`` into table ``name``, verified.

    Must run in a REPEATABLE READ transaction, so the copy and both counts
    see one state (MigrationError otherwise). The snapshot describes itself in
    its table comment, so a rollback needs nothing but its name. Raises
    ValidationFailed when the counts differ.
    """
    level = conn.execute("SELECT current_setting('transaction_isolation')").fetchone()
    if not level or level[0] != "repeatable read":
        raise MigrationError("take_snapshot needs a REPEATABLE READ transaction")
    key = primary_key(conn, table)
    described = tuple(_column(conn, table, c) for c in columns)
    listed = ", ".join(quote(c) for c in key + tuple(c for c in columns if c not in key))
    conn.execute(f"CREATE TABLE {quote(name)} AS SELECT {listed} FROM {quote(table)}")
    source = _count(conn, table)
    copied = _count(conn, name)
    if source != copied:
        raise ValidationFailed(
            f"snapshot {name} holds {copied} rows but {table} has {source}; nothing was dropped"
        )
    snap = Snapshot(name, table, key, described, copied)
    conn.execute(f"COMMENT ON TABLE {quote(name)} IS {_literal(json.dumps(snap.to_json()))}")
    return snap


def read_snapshot(conn: Connection[Any], name: str) -> Snapshot:
    """The snapshot called ``name``, from its table comment; NotFound when it is gone."""
    found = conn.execute(
        "SELECT obj_description(to_regclass(%s), 'pg_class')", (quote(name),)
    ).fetchone()
    if found is None or found[0] is None:
        raise NotFound(f"snapshot {name} does not exist (dropped, or never taken)")
    return Snapshot.from_json(json.loads(found[0]))


def restore_snapshot(conn: Connection[Any], snap: Snapshot, *, fill: tuple[str, ...] = ()) -> int:
    """Put the snapshot's columns back into its table (re-adding missing ones); rows restored.

    Rows the snapshot does not hold (written after it) keep NULL in re-added
    columns unless a ``fill`` statement (run after the restore) sets them; a
    column that was NOT NULL gets it back last, so a row still NULL makes the
    restore fail loudly (NotNullViolation) instead of coming back wrong.
    """
    table = quote(snap.table)
    live = _live_columns(conn, snap.table)
    for col in snap.columns:
        if col.name not in live:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote(col.name)} {col.type}")
    sets = ", ".join(f"{quote(c.name)} = s.{quote(c.name)}" for c in snap.columns)
    match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in snap.key)
    cur = conn.execute(f"UPDATE {table} t SET {sets} FROM {quote(snap.name)} s WHERE {match}")
    for stmt in fill:
        conn.execute(stmt)
    for col in snap.columns:
        if col.not_null:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {quote(col.name)} SET NOT NULL")
    return cur.rowcount


def drop_snapshot(conn: Connection[Any], name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")


def snapshots(conn: Connection[Any]) -> list[str]:
    """Snapshot tables present in the current schema, by name."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE %s"
        " ORDER BY 1",
        (SNAPSHOT_PREFIX.replace("_", "\\_") + "%",),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _column(conn: Connection[Any], table: str, column: str) -> Column:
    found = conn.execute(
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attname = %s AND NOT attisdropped",
        (quote(table), column),
    ).fetchone()
    if found is None:
        raise NotFound(f"{table}.{column} does not exist; nothing to snapshot")
    return Column(column, str(found[0]), bool(found[1]))


def _live_columns(conn: Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped",
        (quote(table),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _count(conn: Connection[Any], table: str) -> int:
    found = conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()
    return int(found[0]) if found else 0
