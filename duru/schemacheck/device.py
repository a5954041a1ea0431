"""Read a live device (SQLite) schema and compare it with what the model derives.

Reads ``sqlite_schema`` and ``PRAGMA table_list / table_xinfo / index_list / index_info /
foreign_key_list``; SQLite keeps CHECK constraints only in the CREATE TABLE text, so an
enum's allowed codes are read from there.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from duru.errors import CorruptDatabase, NotFound
from duru.local.schema import (
    META_DDL,
    SCHEMA_VERSION,
    LiveColumn,
    create_search,
    expected_columns,
    fts_table,
    has_doc_id,
    where_sql,
)
from duru.local.sync_tables import SYNC_TABLES
from duru.model import ENTITIES, MODEL_FINGERPRINT, Entity, Kind, entity

from .collect import Collector, same_expression
from .report import Mismatch, MismatchKind

K = MismatchKind
_CREATE_NAME = re.compile(r'CREATE\s+(?:TABLE|TRIGGER)\s+(?:IF NOT EXISTS\s+)?"?(\w+)"?', re.I)
_FTS_SHADOWS = ("data", "idx", "docsize", "config", "content")


@dataclass
class DeviceIndex:
    name: str
    columns: tuple[str | None, ...]
    unique: bool
    origin: str  # c: CREATE INDEX, u: UNIQUE constraint, pk: PRIMARY KEY
    predicate: str | None


@dataclass
class DeviceTable:
    name: str
    sql: str
    strict: bool
    columns: dict[str, LiveColumn] = field(default_factory=dict)
    indexes: dict[str, DeviceIndex] = field(default_factory=dict)
    foreign_keys: dict[tuple[str, ...], tuple[str, tuple[str, ...], str]] = field(
        default_factory=dict
    )


@dataclass
class DeviceSchema:
    tables: dict[str, DeviceTable] = field(default_factory=dict)
    triggers: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """Open a device file read-only; NotFound if absent, CorruptDatabase if not SQLite."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no device database at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CorruptDatabase(f"{path} is not a readable SQLite database: {exc}") from None
    return conn


def introspect_device(conn: sqlite3.Connection) -> DeviceSchema:
    """The tables (with columns, indexes, foreign keys), triggers and meta of a device file."""
    schema = DeviceSchema()
    strict = {r[1]: bool(r[5]) for r in conn.execute("PRAGMA table_list") if r[0] == "main"}
    rows = conn.execute("SELECT type, name, sql FROM sqlite_schema").fetchall()
    sql_of = {name: sql or "" for _, name, sql in rows}
    for kind, name, sql in rows:
        if kind == "trigger":
            schema.triggers.add(name)
        elif kind == "table":
            schema.tables[name] = _table(conn, name, sql or "", strict.get(name, False), sql_of)
    if "duru_meta" in schema.tables:
        schema.meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM duru_meta")}
    return schema


def _table(
    conn: sqlite3.Connection, name: str, sql: str, strict: bool, sql_of: dict[str, str]
) -> DeviceTable:
    table = DeviceTable(name, sql, strict)
    q = _quote(name)
    for _, col, type_, notnull, _, pk, hidden in conn.execute(f"PRAGMA table_xinfo({q})"):
        if hidden == 0:
            table.columns[col] = LiveColumn(col, str(type_).upper(), bool(notnull), pk > 0)
    for _, ix_name, unique, origin, partial in conn.execute(f"PRAGMA index_list({q})"):
        cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({_quote(ix_name)})"))
        pred = _where_of(sql_of.get(ix_name, "")) if partial else None
        table.indexes[ix_name] = DeviceIndex(ix_name, cols, bool(unique), origin, pred)
    fks: dict[int, list[tuple[str, str, str, str]]] = {}
    for fk_id, _, parent, src, dst, _, on_delete, _ in conn.execute(
        f"PRAGMA foreign_key_list({q})"
    ):
        fks.setdefault(fk_id, []).append((parent, src, dst, on_delete))
    for parts in fks.values():
        src = tuple(p[1] for p in parts)
        table.foreign_keys[src] = (parts[0][0], tuple(p[2] for p in parts), parts[0][3])
    return table


def compare_device(live: DeviceSchema, entities: tuple[Entity, ...] = ENTITIES) -> list[Mismatch]:
    """Every difference between a live device schema and the model."""
    out = Collector("device")
    for name in _meta_tables():
        if name not in live.tables:
            out.add(K.MISSING_TABLE, name, None, "table missing")
    for e in entities:
        table = live.tables.get(e.table)
        if table is None:
            out.add(K.MISSING_TABLE, e.table, None, "table missing")
            continue
        _compare_table(out, e, table)
        _compare_search(out, e, live)
    for name in sorted(set(live.tables) - set(_known_tables(entities))):
        # SQLite's own tables, and the migration engine's audit and run state, are not drift.
        if not name.startswith(("sqlite_", MIGRATION_TABLES_PREFIX)):
            out.add(K.EXTRA_TABLE, name, None, "table not in the model", severity="warning")
    _compare_meta(out, live)
    return out.items


def _compare_table(out: Collector, e: Entity, table: DeviceTable) -> None:
    if not table.strict:
        out.add(K.NOT_STRICT, e.table, None, "table is not STRICT (wrong types get in)")
    expected = {c.name: c for c in expected_columns(e)}
    for col in expected.values():
        found = table.columns.get(col.name)
        if found is None:
            out.add(K.MISSING_COLUMN, e.table, col.name, "column missing", expected=col.type)
        elif found.type != col.type:
            out.add(K.TYPE, e.table, col.name, "type differs", found=found.type, expected=col.type)
        elif found.notnull != col.notnull:
            out.add(
                K.NULLABILITY,
                e.table,
                col.name,
                "nullability differs",
                found=_null_word(found.notnull),
                expected=_null_word(col.notnull),
            )
    for name in table.columns:
        if name not in expected:
            out.add(K.EXTRA_COLUMN, e.table, name, "column not in the model", found=name)
    want_pk = sorted(c.name for c in expected.values() if c.pk)
    got_pk = sorted(c.name for c in table.columns.values() if c.pk)
    if want_pk != got_pk:
        out.add(
            K.PRIMARY_KEY,
            e.table,
            None,
            "primary key differs",
            found=f"({', '.join(got_pk)})",
            expected=f"({', '.join(want_pk)})",
        )
    _compare_enums(out, e, table)
    _compare_indexes(out, e, table)
    _compare_unique(out, e, table)
    _compare_foreign_keys(out, e, table)


def _compare_enums(out: Collector, e: Entity, table: DeviceTable) -> None:
    for f in e.fields:
        if f.kind is not Kind.ENUM or f.name not in table.columns:
            continue
        want = ", ".join(str(c) for c in f.enum.codes)
        found = _check_codes(table.sql, f.name)
        if found is None:
            out.add(
                K.ENUM_VALUES,
                e.table,
                f.name,
                "no CHECK limits the enum codes",
                found="none",
                expected=want,
            )
        elif sorted(found) != sorted(f.enum.codes):
            out.add(
                K.ENUM_VALUES,
                e.table,
                f.name,
                "enum codes differ",
                found=", ".join(str(c) for c in found),
                expected=want,
            )


def _check_codes(sql: str, column: str) -> list[int] | None:
    pattern = rf'CHECK\s*\(\s*"?{re.escape(column)}"?\s+IN\s*\(([^)]*)\)\s*\)'
    match = re.search(pattern, sql, re.IGNORECASE)
    if match is None:
        return None
    try:
        return [int(v) for v in match.group(1).split(",") if v.strip()]
    except ValueError:
        return []


def _compare_indexes(out: Collector, e: Entity, table: DeviceTable) -> None:
    declared = [ix for ix in e.indexes if ix.side != "remote"]
    for ix in declared:
        name = e.index_name(ix)
        want_where = where_sql(e, ix.where) if ix.where else None
        want = _index_text(ix.columns, ix.unique, want_where)
        found = table.indexes.get(name)
        if found is None:
            out.add(
                K.MISSING_INDEX,
                e.table,
                None,
                f"index {name} missing",
                note=f"serves: {ix.query}",
                expected=want,
            )
            continue
        same = (
            found.columns == ix.columns
            and found.unique == ix.unique
            and same_expression(found.predicate, want_where)
        )
        if not same:
            out.add(
                K.INDEX_DEFINITION,
                e.table,
                None,
                f"index {name} differs",
                found=_index_text(found.columns, found.unique, found.predicate),
                expected=want,
            )
    names = {e.index_name(ix) for ix in declared}
    for name, found in table.indexes.items():
        if found.origin == "c" and name not in names:
            out.add(
                K.EXTRA_INDEX,
                e.table,
                None,
                f"index {name} not in the model",
                found=_index_text(found.columns, found.unique, found.predicate),
                severity="warning",
            )


def _compare_unique(out: Collector, e: Entity, table: DeviceTable) -> None:
    want: set[tuple[str | None, ...]] = {tuple(u) for u in e.unique}
    if has_doc_id(e):
        want.add((e.key,))
    got = {ix.columns for ix in table.indexes.values() if ix.origin == "u"}
    for cols in sorted(want - got, key=str):
        out.add(K.UNIQUE, e.table, None, "UNIQUE constraint missing", expected=_cols(cols))
    for cols in sorted(got - want, key=str):
        out.add(K.UNIQUE, e.table, None, "UNIQUE constraint not in the model", found=_cols(cols))


def _compare_foreign_keys(out: Collector, e: Entity, table: DeviceTable) -> None:
    found = dict(table.foreign_keys)
    for f in e.foreign_keys:
        parent = entity(f.references or "")
        want = _fk_text((f.name,), parent.table, (parent.key,), f.on_delete or "NO ACTION")
        got = found.pop((f.name,), None)
        if got is None:
            out.add(K.FOREIGN_KEY, e.table, f.name, "foreign key missing", expected=want)
        elif _fk_text((f.name,), *got) != want:
            out.add(
                K.FOREIGN_KEY,
                e.table,
                f.name,
                "foreign key differs",
                found=_fk_text((f.name,), *got),
                expected=want,
            )
    for cols, got in found.items():
        out.add(
            K.FOREIGN_KEY,
            e.table,
            cols[-1],
            "foreign key not in the model",
            found=_fk_text(cols, *got),
        )


def _compare_search(out: Collector, e: Entity, live: DeviceSchema) -> None:
    if e.search is None:
        return
    if fts_table(e) not in live.tables:
        out.add(K.MISSING_TABLE, fts_table(e), None, "full-text table missing")
    for name in _search_triggers(e):
        if name not in live.triggers:
            out.add(
                K.MISSING_TRIGGER,
                e.table,
                None,
                f"trigger {name} missing (keeps {fts_table(e)} in step)",
            )


def _compare_meta(out: Collector, live: DeviceSchema) -> None:
    if "duru_meta" not in live.tables:
        return
    want = {"schema_version": str(SCHEMA_VERSION), "model_fingerprint": MODEL_FINGERPRINT}
    for key, value in want.items():
        if live.meta.get(key) != value:
            out.add(
                K.FINGERPRINT,
                "duru_meta",
                key,
                f"{key} differs (made by another duru?)",
                found=live.meta.get(key, "none"),
                expected=value,
            )


MIGRATION_TABLES_PREFIX = "duru_migration_"


def _meta_tables() -> list[str]:
    names = (_CREATE_NAME.search(stmt) for stmt in META_DDL)
    return [m.group(1) for m in names if m and "TABLE" in m.group(0).upper()]


def _search_triggers(e: Entity) -> list[str]:
    out = []
    for stmt in create_search(e):
        m = _CREATE_NAME.search(stmt)
        if m and "TRIGGER" in m.group(0).upper():
            out.append(m.group(1))
    return out


def _known_tables(entities: tuple[Entity, ...]) -> Iterator[str]:
    yield from _meta_tables()
    yield from SYNC_TABLES
    for e in entities:
        yield e.table
        if e.search is not None:
            yield fts_table(e)
            yield from (f"{fts_table(e)}_{s}" for s in _FTS_SHADOWS)


def _where_of(sql: str) -> str | None:
    match = re.search(r"\bWHERE\b(.*)$", sql, re.IGNORECASE | re.DOTALL)
    return match.group(1).strip() if match else None


def _index_text(cols: tuple[str | None, ...], unique: bool, where: str | None) -> str:
    text = f"{'UNIQUE ' if unique else ''}({', '.join(c or '<expr>' for c in cols)})"
    return f"{text} WHERE {where}" if where else text


def _fk_text(cols: tuple[str, ...], ref: str, ref_cols: tuple[str, ...], action: str) -> str:
    return f"({', '.join(cols)}) -> {ref} ({', '.join(ref_cols)}) ON DELETE {action}"


def _cols(cols: tuple[str | None, ...]) -> str:
    return f"({', '.join(c or '<expr>' for c in cols)})"


def _null_word(notnull: bool) -> str:
    return "NOT NULL" if notnull else "NULL allowed"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
