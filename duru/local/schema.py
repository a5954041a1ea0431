"""The device (SQLite) schema, derived from the model.

Every table is STRICT, so SQLite itself refuses a value of the wrong storage
type. Entities with full-text search get an ``INTEGER PRIMARY KEY`` called
``doc_id`` (their uuid becomes UNIQUE): an FTS5 external-content table needs a
rowid that VACUUM cannot renumber, and a plain rowid can be renumbered.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from duru.model import ENTITIES, Default, Entity, Field, Kind, to_local

SCHEMA_VERSION = 1
DOC_ID = "doc_id"
FTS_TOKENIZER = "unicode61 remove_diacritics 2"

_STORAGE = {
    Kind.UUID: "TEXT",
    Kind.TEXT: "TEXT",
    Kind.INT: "INTEGER",
    Kind.FLOAT: "REAL",
    Kind.BOOL: "INTEGER",
    Kind.TIMESTAMP: "INTEGER",
    Kind.JSON: "TEXT",
    Kind.ENUM: "INTEGER",
}

# Tables of duru itself, not of the app: the schema's own bookkeeping.
META_DDL = (
    """CREATE TABLE IF NOT EXISTS duru_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT""",
    # Every change a device makes, in order, until the server has it.
    """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('upsert', 'delete')),
    base_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT""",
    "CREATE INDEX IF NOT EXISTS ix_outbox_entity_row_id ON outbox (entity, row_id)",
    # Rows an import or a migration could not place, kept with the reason.
    """CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    source_table TEXT NOT NULL,
    source_key TEXT,
    reason TEXT NOT NULL,
    row_json TEXT NOT NULL CHECK (json_valid(row_json)),
    created_at INTEGER NOT NULL
) STRICT""",
)


@dataclass(frozen=True)
class LiveColumn:
    """A column as ``PRAGMA table_xinfo`` reports it, for comparing with the model."""

    name: str
    type: str
    notnull: bool
    pk: bool


def quote(name: str) -> str:
    """Quote an identifier for SQLite."""
    return '"' + name.replace('"', '""') + '"'


def keyed_rows(
    conn: sqlite3.Connection,
    select_list: str,
    table: str,
    key: str,
    keys: Sequence[str],
    also: str = "",
    params: Sequence[object] = (),
) -> Iterator[tuple[Any, ...]]:
    """``SELECT select_list`` of the rows of ``table`` whose ``key`` is among ``keys``
    (``also``: more conditions, `` AND ...``, on the table's columns, with ``params``),
    500 keys a query, each found by ``key``'s index whatever SQLite's statistics say.

    Not ``key IN (?, ?, ...)``: with statistics from when the table was small (the
    ANALYZE that ends a migration run), SQLite scans the whole table for a long list: 500
    keys of a 30,500-note device took 22 ms a query by scan, 1.6 ms by index. The keys go
    as a JSON list CROSS JOINed to the table (SQLite never reorders a CROSS JOIN, so the
    list stays the outer loop). For a ``key`` that is unique (with ``also``'s columns): on
    any other index SQLite may build a Bloom filter of the whole table first (an outbox
    of 6,000 ops: 15 times the steps). A key holding a NUL is left out: json_each ends a
    text at its first NUL, so "<id>\\u0000x" would find the row "<id>"; no key of ours
    holds one.
    """
    query = (
        f"SELECT {select_list} FROM (SELECT DISTINCT value AS wanted_key FROM json_each(?))"
        f" CROSS JOIN {quote(table)} ON {quote(key)} = wanted_key{also}"
    )
    for i in range(0, len(keys), 500):
        part = json.dumps([k for k in keys[i : i + 500] if "\x00" not in k])
        yield from conn.execute(query, [part, *params])


def has_doc_id(entity: Entity) -> bool:
    return entity.search is not None


def fts_table(entity: Entity) -> str:
    return f"{entity.table}_fts"


def sql_literal(value: object) -> str:
    """A SQL literal for a stored value (only ints, floats, text and NULL occur)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def column_ddl(entity: Entity, f: Field) -> str:
    """The column definition of ``f`` in ``entity``'s table."""
    parts = [quote(f.name), _STORAGE[f.kind]]
    if f.name == entity.key and not has_doc_id(entity):
        parts.append("PRIMARY KEY")
    if not f.nullable:
        parts.append("NOT NULL")
    if f.name == entity.key and has_doc_id(entity):
        parts.append("UNIQUE")
    default = _default_sql(f)
    if default is not None:
        parts.append(f"DEFAULT {default}")
    check = _check_sql(f)
    if check is not None:
        parts.append(f"CHECK ({check})")
    if f.references is not None:
        parent = _parent(f)
        parts.append(f"REFERENCES {quote(parent.table)} ({quote(parent.key)})")
        if f.on_delete is not None:
            parts.append(f"ON DELETE {f.on_delete}")
    return " ".join(parts)


def create_table(entity: Entity) -> str:
    """``CREATE TABLE`` for ``entity``, named ``table`` (a rebuild passes another name)."""
    return create_table_named(entity, entity.table)


def create_table_named(entity: Entity, table: str) -> str:
    lines = []
    if has_doc_id(entity):
        lines.append(f"{DOC_ID} INTEGER PRIMARY KEY")
    lines += [column_ddl(entity, f) for f in entity.fields]
    lines += [f"UNIQUE ({', '.join(quote(c) for c in cols)})" for cols in entity.unique]
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {quote(table)} (\n    {body}\n) STRICT"


def create_indexes(entity: Entity) -> list[str]:
    """The device-side indexes of ``entity``."""
    out = []
    for ix in entity.indexes:
        if ix.side == "remote":
            continue
        cols = ", ".join(quote(c) for c in ix.columns)
        unique = "UNIQUE " if ix.unique else ""
        sql = (
            f"CREATE {unique}INDEX {quote(entity.index_name(ix))} ON {quote(entity.table)} ({cols})"
        )
        if ix.where:
            sql += f" WHERE {where_sql(entity, ix.where)}"
        out.append(sql)
    return out


def where_sql(entity: Entity, where: Mapping[str, object], prefix: str = "") -> str:
    """Render a ``{field: value}`` filter in device form; tuple values become IN."""
    terms = []
    for name, value in where.items():
        f = entity.field(name)
        col = f"{prefix}{quote(name)}"
        if isinstance(value, tuple):
            items = ", ".join(sql_literal(to_local(f, v)) for v in value)
            terms.append(f"{col} IN ({items})")
        else:
            terms.append(f"{col} = {sql_literal(to_local(f, value))}")
    return " AND ".join(terms)


def create_search(entity: Entity) -> list[str]:
    """The FTS5 table of ``entity`` and the triggers that keep it right."""
    if entity.search is None:
        return []
    fts, table = quote(fts_table(entity)), quote(entity.table)
    cols = ", ".join(quote(c) for c in entity.search.fields)
    new_vals = ", ".join(f"new.{quote(c)}" for c in entity.search.fields)
    old_vals = ", ".join(f"old.{quote(c)}" for c in entity.search.fields)
    only_new = where_sql(entity, entity.search.only, "new.") or "1"
    only_old = where_sql(entity, entity.search.only, "old.") or "1"
    watched = ", ".join(quote(c) for c in (*entity.search.fields, *entity.search.only))
    add = f"INSERT INTO {fts} (rowid, {cols}) SELECT new.{DOC_ID}, {new_vals} WHERE {only_new}"
    # External content: a delete must repeat exactly the values that were indexed.
    remove = (
        f"INSERT INTO {fts} ({fts}, rowid, {cols}) "
        f"SELECT 'delete', old.{DOC_ID}, {old_vals} WHERE {only_old}"
    )
    name = fts_table(entity)
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content={table}, "
        f"content_rowid={DOC_ID}, tokenize='{FTS_TOKENIZER}', prefix='2 3')",
        f"CREATE TRIGGER {quote(name + '_ai')} AFTER INSERT ON {table} BEGIN {add}; END",
        f"CREATE TRIGGER {quote(name + '_ad')} AFTER DELETE ON {table} BEGIN {remove}; END",
        # One trigger, so the old entry always goes before the new one comes.
        f"CREATE TRIGGER {quote(name + '_au')} AFTER UPDATE OF {watched} ON {table} "
        f"BEGIN {remove}; {add}; END",
    ]


def entity_ddl(entity: Entity) -> list[str]:
    """Table, indexes, search table and triggers of one entity, in creation order."""
    return [create_table(entity), *create_indexes(entity), *create_search(entity)]


def device_ddl(entities: tuple[Entity, ...] = ENTITIES) -> list[str]:
    """Every statement that creates a current device database."""
    out = list(META_DDL)
    for e in entities:
        out += entity_ddl(e)
    return out


def expected_columns(entity: Entity) -> list[LiveColumn]:
    """The columns ``PRAGMA table_xinfo`` must report for ``entity``'s table."""
    cols = [LiveColumn(DOC_ID, "INTEGER", False, True)] if has_doc_id(entity) else []
    for f in entity.fields:
        is_pk = f.name == entity.key and not has_doc_id(entity)
        # A non-integer PRIMARY KEY is NOT NULL only because we say so.
        cols.append(LiveColumn(f.name, _STORAGE[f.kind], not f.nullable, is_pk))
    return cols


def expected_indexes(entity: Entity) -> Iterator[str]:
    """Names of the declared device indexes of ``entity``."""
    for ix in entity.indexes:
        if ix.side != "remote":
            yield entity.index_name(ix)


def _parent(f: Field) -> Entity:
    for e in ENTITIES:
        if e.name == f.references:
            return e
    raise KeyError(f"{f.name} references unknown entity {f.references!r}")


def _default_sql(f: Field) -> str | None:
    if f.default is Default.NONE:
        return None
    if f.default is Default.NOW:
        return "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
    return sql_literal(to_local(f, f.default))


def _check_sql(f: Field) -> str | None:
    col = quote(f.name)
    match f.kind:
        case Kind.UUID:
            return f"length({col}) = 36"
        case Kind.BOOL:
            return f"{col} IN (0, 1)"
        case Kind.ENUM:
            return f"{col} IN ({', '.join(str(c) for c in f.enum.codes)})"
        case Kind.JSON:
            # Older SQLite (3.40 here) says json_valid(NULL) = 0, which would refuse every null.
            return f"{col} IS NULL OR json_valid({col})" if f.nullable else f"json_valid({col})"
        case _:
            return None
