"""The server (PostgreSQL 15+) DDL, rendered from the layout, and applying it.

``server_ddl()`` is every statement that creates a current server database (tables and
their constraints, indexes each with a comment naming the query it serves, row level
security, the change sequence function, meta). ``apply_server_schema(conn)`` runs it once
and records the fingerprints; calling it again on that database does nothing, and on a
database made by another model or schema it raises SchemaMismatch.

Row level security: every per-user table has ENABLE and FORCE ROW LEVEL SECURITY and one
policy ``user_id = <duru.user_id setting>``. The setting is read with ``missing_ok`` and
an empty value counts as none, so a session that never set its user sees no rows and can
write none, instead of failing on a cast. Set it per transaction:
``SELECT set_config('duru.user_id', %s, true)``. Superusers and BYPASSRLS roles skip RLS.

Change sequence: ``duru_reserve_change_seqs(user, n)`` adds ``n`` to the user's
``accounts.last_change_seq`` and returns the first of the ``n`` numbers it reserved. The
update locks the account row until the transaction ends, so one user's writers take turns
and their numbers commit in order: a pull reading ``change_seq > cursor`` never skips a
row whose transaction committed late.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from psycopg import Connection

from duru.errors import SchemaMismatch
from duru.model import ENTITIES, MODEL_FINGERPRINT, Entity
from duru.remote.layout import (
    ACCOUNTS,
    META,
    SECRETS,
    SESSIONS,
    USER_ID,
    ServerColumn,
    ServerForeignKey,
    ServerIndex,
    ServerTable,
    server_tables,
)

SERVER_SCHEMA_VERSION = 3
USER_SETTING = "duru.user_id"
POLICY = "duru_owner_only"
RESERVE_FUNCTION = "duru_reserve_change_seqs"
LOGIN_RECORD_FUNCTION = "duru_login_record"
NAME_SALT_FUNCTION = "duru_name_salt"
SESSION_USER_FUNCTION = "duru_session_user"
NAME_SALT_KEY = "name_salt_key"
CURRENT_USER_SQL = f"NULLIF(current_setting('{USER_SETTING}', true), '')::uuid"
# Any constant works; it only has to be the same for every duru process.
_APPLY_LOCK = 0x64757275_00000001


def server_ddl(entities: tuple[Entity, ...] = ENTITIES) -> list[str]:
    """Every statement that creates a current server database, in order.

    Not idempotent on its own (CREATE without IF NOT EXISTS, so a table of the same name
    but another shape is an error, not silently kept); ``apply_server_schema`` is.
    """
    out: list[str] = []
    for table in server_tables(entities):
        out += table_ddl(table)
    out += _function_ddl()
    return out


def server_ddl_script(entities: tuple[Entity, ...] = ENTITIES) -> str:
    """``server_ddl`` as one SQL script, for reading and for ``psql -f``."""
    return "".join(f"{stmt};\n\n" for stmt in server_ddl(entities))


def table_ddl(table: ServerTable) -> list[str]:
    """CREATE TABLE, its indexes and their comments, and its row level security."""
    out = [_create_table(table)]
    out += [
        f"ALTER TABLE {table.name} ALTER COLUMN {c.name} SET STORAGE {c.storage}"
        for c in table.columns
        if c.storage
    ]
    for ix in table.indexes:
        if not ix.constraint:
            out.append(_create_index(table.name, ix))
        out.append(f"COMMENT ON INDEX {ix.name} IS {_quote(_serves(ix))}")
    if table.row_security:
        out += _row_security(table.name, force=table.force_row_security)
    return out


def fingerprint_ddl(statements: list[str]) -> str:
    """A short hex digest of the DDL: changes whenever any emitted statement does."""
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def apply_server_schema(conn: Connection[Any]) -> bool:
    """Create the server schema in ``conn``'s current schema unless it is there; True if made.

    Idempotent: it records ``model_fingerprint`` and ``schema_fingerprint`` in ``duru_meta``
    and returns False when they match this build. Runs in one transaction (a savepoint if
    ``conn`` is in one) under an advisory lock, so concurrent callers create it once.
    Raises SchemaMismatch when the database was made by another model or schema, or holds
    tables of these names that duru did not make.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_APPLY_LOCK,))
        recorded = read_meta(conn)
        if recorded is not None:
            _check_recorded(recorded)
            return False
        _refuse_foreign_tables(conn)
        for stmt in server_ddl():
            conn.execute(stmt)
        conn.cursor().executemany(
            f"INSERT INTO {META} (key, value) VALUES (%s, %s)", list(expected_meta().items())
        )
        conn.execute(
            f"INSERT INTO {SECRETS} (key, value) VALUES (%s, %s)",
            (NAME_SALT_KEY, os.urandom(32)),
        )
    return True


def expected_meta() -> dict[str, str]:
    """What ``duru_meta`` holds in a database this build made."""
    return {
        "schema_version": str(SERVER_SCHEMA_VERSION),
        "model_fingerprint": MODEL_FINGERPRINT,
        "schema_fingerprint": SCHEMA_FINGERPRINT,
    }


def read_meta(conn: Connection[Any]) -> dict[str, str] | None:
    """``duru_meta`` as a dict, or None when the table does not exist."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (META,)).fetchone()
    if not exists or not exists[0]:
        return None
    rows = conn.execute(f"SELECT key, value FROM {META}").fetchall()
    return {str(k): str(v) for k, v in rows}


def _check_recorded(recorded: dict[str, str]) -> None:
    want = expected_meta()
    if all(recorded.get(k) == v for k, v in want.items()):
        return
    raise SchemaMismatch(
        f"the server database was made by model {recorded.get('model_fingerprint')} "
        f"(schema {recorded.get('schema_fingerprint')}, version {recorded.get('schema_version')}); "
        f"this duru needs model {want['model_fingerprint']} (schema "
        f"{want['schema_fingerprint']}, version {want['schema_version']}): "
        "run `duru schema check` to see the differences, `duru migrate run --server <its URL>`"
        " to upgrade it"
    )


def _refuse_foreign_tables(conn: Connection[Any]) -> None:
    names = [t.name for t in server_tables()]
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = ANY(%s) ORDER BY 1",
        (names,),
    ).fetchall()
    if rows:
        found = ", ".join(str(r[0]) for r in rows)
        raise SchemaMismatch(
            f"the server database has tables duru did not make ({found}) and no {META}: "
            "run `duru schema check` to compare it with the model"
        )


def _create_table(table: ServerTable) -> str:
    lines = [_column_ddl(c) for c in table.columns]
    lines += [_constraint_ddl(ix) for ix in table.indexes if ix.constraint]
    lines += [_enum_check(table.name, c) for c in table.columns if c.enum is not None]
    lines += [_foreign_key_ddl(fk) for fk in table.foreign_keys]
    body = ",\n    ".join(lines)
    return f"CREATE TABLE {table.name} (\n    {body}\n)"


def _column_ddl(c: ServerColumn) -> str:
    out = f"{c.name} {c.type}"
    if not c.nullable:
        out += " NOT NULL"
    if c.default is not None:
        out += f" DEFAULT {c.default}"
    return out


def _constraint_ddl(ix: ServerIndex) -> str:
    return f"CONSTRAINT {ix.name} {ix.constraint} ({', '.join(ix.columns)})"


def enum_check_name(table: str, column: str) -> str:
    """The name of the CHECK that lists an enum column's values."""
    return f"{table}_{column}_check"


def _enum_check(table: str, c: ServerColumn) -> str:
    values = ", ".join(_quote(v) for v in c.enum or ())
    return f"CONSTRAINT {enum_check_name(table, c.name)} CHECK ({c.name} IN ({values}))"


def _foreign_key_ddl(fk: ServerForeignKey) -> str:
    action = fk.on_delete
    if fk.set_null:
        action += f" ({', '.join(fk.set_null)})"
    return (
        f"CONSTRAINT {fk.name} FOREIGN KEY ({', '.join(fk.columns)}) "
        f"REFERENCES {fk.ref_table} ({', '.join(fk.ref_columns)}) ON DELETE {action}"
    )


def _create_index(table: str, ix: ServerIndex) -> str:
    unique = "UNIQUE " if ix.unique else ""
    using = f" USING {ix.method}" if ix.method != "btree" else ""
    cols = ", ".join(ix.columns)
    sql = f"-- {_serves(ix)}\nCREATE {unique}INDEX {ix.name} ON {table}{using} ({cols})"
    if ix.where:
        sql += f" WHERE {ix.where}"
    return sql


def _serves(ix: ServerIndex) -> str:
    return f"serves: {ix.query}"


def _row_security(table: str, *, force: bool = True) -> list[str]:
    check = f"{USER_ID} = {CURRENT_USER_SQL}"
    out = [f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"]
    if force:
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    out.append(f"CREATE POLICY {POLICY} ON {table} USING ({check}) WITH CHECK ({check})")
    return out


def _function_ddl() -> list[str]:
    return [*_reserve_ddl(), *_auth_function_ddl()]


def _auth_function_ddl() -> list[str]:
    """The owner's functions that act before a user is known (RLS hides every row then).

    Each is SECURITY DEFINER with a pinned search_path, so the server role can call it
    but cannot make it read another table; none returns more than its caller needs.
    """
    definer = "SECURITY DEFINER SET search_path FROM CURRENT"
    return [
        f"CREATE FUNCTION {LOGIN_RECORD_FUNCTION}(p_name text)\n"
        "    RETURNS TABLE (user_id uuid, salt bytea, kdf_params jsonb, auth_verifier text)\n"
        f"    LANGUAGE sql STABLE {definer}\n"
        f"    AS $$ SELECT a.user_id, a.salt, a.kdf_params, a.auth_verifier FROM {ACCOUNTS} a\n"
        "          WHERE a.name = p_name $$",
        f"COMMENT ON FUNCTION {LOGIN_RECORD_FUNCTION}(text) IS "
        + _quote("log in: the crypto record of the account called p_name (no row: none)"),
        f"CREATE FUNCTION {NAME_SALT_FUNCTION}(p_name text) RETURNS bytea\n"
        f"    LANGUAGE sql STABLE {definer}\n"
        "    AS $$ SELECT substring(sha256(s.value || convert_to(p_name, 'UTF8')) FROM 1 FOR 16)\n"
        f"          FROM {SECRETS} s WHERE s.key = '{NAME_SALT_KEY}' $$",
        f"COMMENT ON FUNCTION {NAME_SALT_FUNCTION}(text) IS "
        + _quote(
            "a salt for a user name with no account, the same on every call, so the answer "
            "for an unknown name looks like one for a real account"
        ),
        f"CREATE FUNCTION {SESSION_USER_FUNCTION}(p_token_hash bytea) RETURNS uuid\n"
        f"    LANGUAGE sql STABLE {definer}\n"
        f"    AS $$ SELECT s.user_id FROM {SESSIONS} s\n"
        "          WHERE s.token_hash = p_token_hash AND s.expires_at > now() $$",
        f"COMMENT ON FUNCTION {SESSION_USER_FUNCTION}(bytea) IS "
        + _quote("authenticate a request: the user of an unexpired token's hash, else NULL"),
    ]


def _reserve_ddl() -> list[str]:
    return [
        f"CREATE FUNCTION {RESERVE_FUNCTION}(p_user_id uuid, p_count bigint) RETURNS bigint\n"
        "    LANGUAGE sql VOLATILE\n"
        f"    AS $$ UPDATE {ACCOUNTS} SET last_change_seq = last_change_seq + p_count\n"
        "          WHERE user_id = p_user_id RETURNING last_change_seq - p_count + 1 $$",
        f"COMMENT ON FUNCTION {RESERVE_FUNCTION}(uuid, bigint) IS "
        + _quote(
            "reserve p_count change sequence numbers for a user; returns the first (NULL: no "
            "such account). Locks the account row until commit, so a user's writers commit "
            "their numbers in order."
        ),
    ]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Last: it renders the DDL with the functions above.
SCHEMA_FINGERPRINT = fingerprint_ddl(server_ddl())
