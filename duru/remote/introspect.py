"""Read a live PostgreSQL schema from the catalog: tables, columns, constraints, indexes, RLS.

``introspect(conn)`` reads one namespace (default: the connection's current schema) in a
handful of catalog queries and returns plain data; it changes nothing and needs no
privilege beyond reading the catalog. Types are named as ``format_type`` prints them
(``timestamp with time zone``), expressions as ``pg_get_expr`` prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection

_DELETE_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
_TEXT_LITERAL = re.compile(r"'((?:[^']|'')*)'::text")


@dataclass(frozen=True)
class LiveColumn:
    name: str
    type: str
    not_null: bool


@dataclass(frozen=True)
class LiveIndex:
    """An index; ``columns`` has None for an expression column."""

    name: str
    columns: tuple[str | None, ...]
    method: str
    unique: bool
    primary: bool
    predicate: str | None
    comment: str | None
    valid: bool


@dataclass(frozen=True)
class LiveForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    set_null: tuple[str, ...]


@dataclass(frozen=True)
class LiveCheck:
    name: str
    columns: tuple[str, ...]
    definition: str

    @property
    def text_values(self) -> tuple[str, ...]:
        """The text literals the CHECK compares with: an enum's allowed values."""
        return tuple(m.replace("''", "'") for m in _TEXT_LITERAL.findall(self.definition))


@dataclass(frozen=True)
class LivePolicy:
    name: str
    command: str  # ALL, SELECT, INSERT, UPDATE, DELETE
    permissive: bool
    using: str | None
    with_check: str | None


@dataclass
class LiveTable:
    name: str
    row_security: bool
    force_row_security: bool
    columns: dict[str, LiveColumn] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    checks: list[LiveCheck] = field(default_factory=list)
    foreign_keys: list[LiveForeignKey] = field(default_factory=list)
    indexes: dict[str, LiveIndex] = field(default_factory=dict)
    policies: list[LivePolicy] = field(default_factory=list)


@dataclass
class LiveSchema:
    """One namespace of a live database."""

    namespace: str
    server_version: int
    tables: dict[str, LiveTable] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)


def introspect(conn: Connection[Any], namespace: str | None = None) -> LiveSchema:
    """The tables, columns, constraints, indexes, policies and functions of ``namespace``."""
    if namespace is None:
        row = conn.execute("SELECT current_schema()").fetchone()
        namespace = str(row[0]) if row and row[0] else "public"
    version = conn.info.server_version
    schema = LiveSchema(namespace, version)
    oids = _tables(conn, schema)
    names = {oid: {} for oid in oids}  # type: dict[int, dict[int, str]]
    _columns(conn, schema, oids, names)
    _constraints(conn, oids, names)
    _indexes(conn, oids, names)
    _policies(conn, oids)
    schema.functions = _functions(conn, namespace)
    return schema


def _tables(conn: Connection[Any], schema: LiveSchema) -> dict[int, LiveTable]:
    rows = conn.execute(
        "SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        (schema.namespace,),
    ).fetchall()
    out = {}
    for oid, name, rls, force in rows:
        table = LiveTable(str(name), bool(rls), bool(force))
        schema.tables[table.name] = table
        out[int(oid)] = table
    return out


def _columns(
    conn: Connection[Any],
    schema: LiveSchema,
    oids: dict[int, LiveTable],
    names: dict[int, dict[int, str]],
) -> None:
    rows = conn.execute(
        "SELECT attrelid, attnum, attname, format_type(atttypid, atttypmod), attnotnull"
        " FROM pg_attribute WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attrelid, attnum",
        (list(oids),),
    ).fetchall()
    for oid, num, name, type_, not_null in rows:
        oids[oid].columns[name] = LiveColumn(name, type_, bool(not_null))
        names[oid][num] = name


def _constraints(
    conn: Connection[Any], oids: dict[int, LiveTable], names: dict[int, dict[int, str]]
) -> None:
    rows = conn.execute(
        "SELECT c.conrelid, c.conname, c.contype, c.conkey, r.relname, c.confrelid,"
        " c.confkey, c.confdeltype, c.confdelsetcols, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c LEFT JOIN pg_class r ON r.oid = c.confrelid"
        " WHERE c.conrelid = ANY(%s) ORDER BY c.conrelid, c.conname",
        (list(oids),),
    ).fetchall()
    for oid, name, kind, key, ref, ref_oid, ref_key, on_delete, set_cols, definition in rows:
        table, cols = oids[oid], _named(names[oid], key)
        if kind == "p":
            table.primary_key = cols
        elif kind == "c":
            table.checks.append(LiveCheck(name, cols, definition))
        elif kind == "f":
            ref_names = names.get(ref_oid) or _column_names(conn, ref_oid)
            table.foreign_keys.append(
                LiveForeignKey(
                    name,
                    cols,
                    str(ref),
                    _named(ref_names, ref_key),
                    _DELETE_ACTIONS.get(str(on_delete), str(on_delete)),
                    _named(names[oid], set_cols),
                )
            )


def _indexes(
    conn: Connection[Any], oids: dict[int, LiveTable], names: dict[int, dict[int, str]]
) -> None:
    rows = conn.execute(
        "SELECT i.indrelid, c.relname, (i.indkey::int2[])[0:i.indnkeyatts - 1], am.amname,"
        " i.indisunique, i.indisprimary, pg_get_expr(i.indpred, i.indrelid),"
        " obj_description(c.oid, 'pg_class'), i.indisvalid"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = ANY(%s) ORDER BY c.relname",
        (list(oids),),
    ).fetchall()
    for oid, name, key, method, unique, primary, pred, comment, valid in rows:
        cols = tuple(names[oid].get(n) if n else None for n in key or ())
        oids[oid].indexes[name] = LiveIndex(
            name, cols, method, bool(unique), bool(primary), pred, comment, bool(valid)
        )


def _policies(conn: Connection[Any], oids: dict[int, LiveTable]) -> None:
    commands = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}
    rows = conn.execute(
        "SELECT polrelid, polname, polcmd, polpermissive, pg_get_expr(polqual, polrelid),"
        " pg_get_expr(polwithcheck, polrelid) FROM pg_policy WHERE polrelid = ANY(%s)"
        " ORDER BY polrelid, polname",
        (list(oids),),
    ).fetchall()
    for oid, name, cmd, permissive, using, check in rows:
        command = commands.get(str(cmd), str(cmd))
        oids[oid].policies.append(LivePolicy(name, command, bool(permissive), using, check))


def _functions(conn: Connection[Any], namespace: str) -> set[str]:
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s",
        (namespace,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _column_names(conn: Connection[Any], oid: int) -> dict[int, str]:
    rows = conn.execute(
        "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0", (oid,)
    ).fetchall()
    return {int(n): str(a) for n, a in rows}


def _named(names: dict[int, str], nums: list[int] | None) -> tuple[str, ...]:
    return tuple(names.get(n, f"#{n}") for n in nums or ())
