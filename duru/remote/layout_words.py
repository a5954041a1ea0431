"""The words of the server layout: its tables' shapes and the names every module shares.

:class:`ServerTable` (columns, indexes, foreign keys, row level security),
:class:`ServerColumn` with its :class:`Role`, :class:`ServerIndex`,
:class:`ServerForeignKey`, the type names as PostgreSQL prints them, and the
names of the columns and tables that are not the model's. What each table
holds is :mod:`duru.remote.layout`'s (which re-exports all of this).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from duru.model import Kind

USER_ID = "user_id"
CHANGE_SEQ = "change_seq"
DELETED_AT = "deleted_at"
ROW_MAC = "row_mac"
SERVER_ONLY_COLUMNS = (CHANGE_SEQ, DELETED_AT)
ACCOUNTS = "accounts"
META = "duru_meta"
SESSIONS = "sessions"
APPLIED_OPS = "applied_ops"
CONFLICTS = "conflicts"
LOGIN_FAILURES = "login_failures"
SNAPSHOTS = "snapshots"
SNAPSHOT_PARTS = "snapshot_parts"
SECRETS = "duru_secrets"
# Tables the sync server's role may not touch: only the schema owner reads them.
OWNER_ONLY_TABLES = (META, SECRETS)
BYTEA = "bytea"
TIMESTAMPTZ = "timestamp with time zone"

# Type names exactly as PostgreSQL's format_type() prints them, so DDL and introspection
# speak the same words. Ints are bigint: the device stores 64-bit integers.
SERVER_TYPES = {
    Kind.UUID: "uuid",
    Kind.TEXT: "text",
    Kind.INT: "bigint",
    Kind.FLOAT: "double precision",
    Kind.BOOL: "boolean",
    Kind.TIMESTAMP: TIMESTAMPTZ,
    Kind.JSON: "jsonb",
    Kind.ENUM: "text",
}


class Role(StrEnum):
    """What a server column holds."""

    OWNER = "owner"  # user_id
    PLAIN = "plain"  # a non-secret model field, converted
    SEALED = "sealed"  # one secret field, sealed (title_enc)
    BLIND_INDEX = "blind_index"  # keyed hash of a secret field (tag_hmac)
    PROPS = "props"  # the packed secret fields, sealed together (props_enc)
    MAC = "mac"  # the writing device's MAC over the row (row_mac)
    SERVER = "server"  # server bookkeeping (change_seq, deleted_at, accounts, meta)


@dataclass(frozen=True)
class ServerColumn:
    """One column of a server table; ``field`` names the model field it carries."""

    name: str
    type: str
    nullable: bool = False
    role: Role = Role.SERVER
    field: str | None = None
    enum: tuple[str, ...] | None = None
    default: str | None = None  # SQL expression, for server bookkeeping columns only
    # SET STORAGE: EXTERNAL for ciphertext, which TOAST would try to compress for nothing.
    storage: str | None = None


@dataclass(frozen=True)
class ServerIndex:
    """An index (or the index of a primary key / unique constraint) and the query it serves.

    ``where`` is the predicate as PostgreSQL itself prints it back (pg_get_expr), so the
    schema check can compare it with a live index without a parser.
    """

    name: str
    columns: tuple[str, ...]
    query: str
    method: str = "btree"
    unique: bool = False
    where: str = ""
    constraint: str = ""  # "PRIMARY KEY" or "UNIQUE" when a table constraint makes it


@dataclass(frozen=True)
class ServerForeignKey:
    """A foreign key; ``set_null`` lists the columns ``ON DELETE SET NULL`` clears."""

    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    set_null: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerTable:
    """A server table: columns, indexes (the primary key's first), foreign keys, RLS."""

    name: str
    columns: tuple[ServerColumn, ...]
    indexes: tuple[ServerIndex, ...]
    foreign_keys: tuple[ServerForeignKey, ...] = ()
    row_security: bool = True
    entity: str | None = None
    # FORCE makes the policy bind the table's owner too. ``accounts`` and ``sessions`` are
    # not forced: the owner's SECURITY DEFINER functions find an account by name and a
    # session by token before any user is known (the server role still sees only its own).
    force_row_security: bool = True

    @property
    def primary_key(self) -> ServerIndex:
        return self.indexes[0]

    def column(self, name: str) -> ServerColumn | None:
        """The column called ``name``, or None."""
        return next((c for c in self.columns if c.name == name), None)


def owner_key(table: str) -> ServerForeignKey:
    """The foreign key from ``table``'s owner column to ``accounts`` (deleting an account
    deletes its rows)."""
    return ServerForeignKey(f"fk_{table}_{USER_ID}", (USER_ID,), ACCOUNTS, (USER_ID,), "CASCADE")
