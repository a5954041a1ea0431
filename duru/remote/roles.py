"""The role the sync server connects as: not the schema owner, never a superuser.

``ensure_server_role(owner_conn)`` (run by the schema owner, after ``apply_server_schema``)
creates, once per database, a LOGIN role with NOSUPERUSER NOBYPASSRLS, grants it the data
tables and the auth functions but not ``duru_meta`` or ``duru_secrets``, and returns its
name and password. Row level security binds that role on every per-user table, so a query
that forgets its ``WHERE user_id`` still sees only the request's user.

The password lives in ``duru_secrets`` (owner only), so every ``duru serve`` process on the
same database finds the same one; none keeps state another would need.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from psycopg import Connection, sql

from duru.errors import RemoteError
from duru.remote.config import with_role
from duru.remote.layout import OWNER_ONLY_TABLES, SECRETS, server_tables
from duru.remote.schema import (
    LOGIN_RECORD_FUNCTION,
    NAME_SALT_FUNCTION,
    RESERVE_FUNCTION,
    SESSION_USER_FUNCTION,
)

PASSWORD_KEY = "server_role_password"
_ROLE_LOCK = 0x64757275_00000002
_FUNCTIONS = (
    f"{RESERVE_FUNCTION}(uuid, bigint)",
    f"{LOGIN_RECORD_FUNCTION}(text)",
    f"{NAME_SALT_FUNCTION}(text)",
    f"{SESSION_USER_FUNCTION}(bytea)",
)


def server_role_name(database: str) -> str:
    """The server role of database ``database`` (role names are cluster-wide)."""
    return f"duru_server_{hashlib.sha256(database.encode()).hexdigest()[:12]}"


def ensure_server_role(owner: Connection[Any]) -> tuple[str, str]:
    """Create (or re-grant) this database's server role; return (role, password).

    ``owner`` is a connection as the schema owner (autocommit or not: this runs in its
    own transaction). Raises RemoteError when the owner may not create roles (then give
    the server a URL of its own role with ``DURU_SERVER_DATABASE_URL``).
    """
    with owner.transaction():
        owner.execute("SELECT pg_advisory_xact_lock(%s)", (_ROLE_LOCK,))
        database = str(_one(owner, "SELECT current_database()"))
        role = server_role_name(database)
        stored = _stored_password(owner)
        password = stored or _new_password(owner)
        exists = _one(owner, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,))
        try:
            if not exists:
                owner.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                        " PASSWORD {}"
                    ).format(sql.Identifier(role), sql.Literal(password))
                )
            elif stored is None:
                # A role left by an earlier database of the same name: give it our password.
                owner.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            _grant(owner, role, database)
        except Exception as exc:  # psycopg's InsufficientPrivilege and kin
            raise RemoteError(
                f"cannot set up the sync server's role {role!r} ({' '.join(str(exc).split())}):"
                " connect as a role that may create roles, or set DURU_SERVER_DATABASE_URL"
                " to a non-superuser role granted the duru tables"
            ) from exc
    return role, password


def server_role_url(owner_url: str, role: str, password: str) -> str:
    """``owner_url`` with the server role's user name and password."""
    return with_role(owner_url, role, password)


def _grant(owner: Connection[Any], role: str, database: str) -> None:
    who = sql.Identifier(role)
    owner.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), who)
    )
    owner.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_schema(owner), who))
    tables = [t.name for t in server_tables() if t.name not in OWNER_ONLY_TABLES]
    owner.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, tables)), who
        )
    )
    for fn in _FUNCTIONS:
        # Functions are executable by PUBLIC by default: only the server role may call ours.
        owner.execute(sql.SQL(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC"))
        owner.execute(sql.SQL(f"GRANT EXECUTE ON FUNCTION {fn} TO {{}}").format(who))


def _schema(owner: Connection[Any]) -> sql.Identifier:
    return sql.Identifier(str(_one(owner, "SELECT current_schema()")))


def _stored_password(owner: Connection[Any]) -> str | None:
    found = owner.execute(f"SELECT value FROM {SECRETS} WHERE key = %s", (PASSWORD_KEY,)).fetchone()
    return None if found is None else bytes(found[0]).decode("ascii")


def _new_password(owner: Connection[Any]) -> str:
    password = secrets.token_urlsafe(32)
    owner.execute(
        f"INSERT INTO {SECRETS} (key, value) VALUES (%s, %s)",
        (PASSWORD_KEY, password.encode("ascii")),
    )
    return password


def _one(conn: Connection[Any], query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]
