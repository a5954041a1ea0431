"""The server (PostgreSQL) layout of every table, derived from the model.

Each entity gets a table of the same name, owned per row by ``user_id``:

    user_id     uuid NOT NULL        first column of every key, index and foreign key, so
                                     the schema can be distributed by user_id on Citus
    <field>     plain fields: uuid, text, bigint, double precision, boolean, timestamptz,
                jsonb; an enum is text with a CHECK listing the model's names
    <remote>    bytea: a secret field with ``remote`` set (``title`` -> ``title_enc``)
    <f>_hmac    bytea: the blind index of a ``blind_index`` field (``tag`` -> ``tag_hmac``)
    props_enc   bytea: every other secret field, sealed together as one JSON object
    row_mac     bytea: the writing device's MAC over the row (``duru.crypto.row_mac``)

Beyond the model (server bookkeeping, never sent to devices as fields):

    change_seq  bigint NOT NULL      the row's place in its user's change sequence, given
                                     out by ``duru_reserve_change_seqs`` (see ``schema``);
                                     pull reads a user's rows ordered by it
    deleted_at  timestamptz          tombstone: set when a device purged the row; the row
                                     stays (so pulls can carry the delete) until the
                                     tombstone horizon, then it is removed

and the tables ``accounts`` (one row per user: the crypto record, the user's last change
sequence number and tombstone horizon), ``duru_meta`` (which model and schema made the
database), and the sync server's own: ``sessions`` (hashes of login tokens),
``applied_ops`` (which pushed op ids applied, so a retried op applies once), ``conflicts``
(the losing side of each stale write, pulled by every device), ``login_failures`` (rate
limits, per account and per address) and ``duru_secrets`` (owner only: the server role's
password and the key that makes answers for unknown user names look like real ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from duru.model import BY_NAME, ENTITIES, PROPS_COLUMN, Entity, Field, Index, Kind, entity

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


def blind_index_column(f: Field) -> str:
    """The server column holding the blind index of ``f`` (``tag`` -> ``tag_hmac``)."""
    return f"{f.name}_hmac"


def server_column_of(f: Field) -> str:
    """The server column that identifies ``f`` in keys and indexes.

    Raises ValueError for a secret field without a blind index: the server cannot
    compare ciphertexts, so such a field can be in no server key or index.
    """
    if not f.secret:
        return f.name
    if f.blind_index:
        return blind_index_column(f)
    raise ValueError(f"{f.name} is secret: no server key or index can use it")


def server_columns(e: Entity) -> tuple[ServerColumn, ...]:
    """The columns of ``e``'s server table, in table order."""
    cols = [ServerColumn(USER_ID, "uuid", role=Role.OWNER)]
    for f in e.fields:
        cols += _field_columns(f)
    if e.packed_fields:
        cols.append(ServerColumn(PROPS_COLUMN, BYTEA, role=Role.PROPS))
    cols.append(ServerColumn(ROW_MAC, BYTEA, role=Role.MAC))
    cols.append(ServerColumn(CHANGE_SEQ, "bigint"))
    cols.append(ServerColumn(DELETED_AT, TIMESTAMPTZ, nullable=True))
    return tuple(cols)


def mac_columns(e: Entity) -> tuple[ServerColumn, ...]:
    """The columns of ``e``'s server rows that the row MAC covers, in table order.

    Not ``user_id`` (the MAC names the user), ``version`` (the MAC carries the base
    version instead), ``row_mac`` itself, nor the server's bookkeeping.
    """
    return tuple(
        c
        for c in server_columns(e)
        if c.role not in (Role.OWNER, Role.MAC, Role.SERVER) and c.name != "version"
    )


def cleared_column(e: Entity) -> str | None:
    """The foreign key of ``e`` the server clears when its target is purged (``ON DELETE
    SET NULL``), or None; the row MAC carries a second tag for the row with it cleared."""
    found = [f.name for f in e.fields if f.on_delete == "SET NULL"]
    if len(found) > 1:
        raise NotImplementedError(f"{e.name} has two SET NULL links: give each its own tag")
    return found[0] if found else None


def _field_columns(f: Field) -> list[ServerColumn]:
    if f.packed and not f.blind_index:
        return []
    out = []
    if f.remote is not None:
        out.append(ServerColumn(f.remote, BYTEA, f.nullable, Role.SEALED, f.name))
    elif not f.secret:
        enum = f.enum.names if f.kind is Kind.ENUM else None
        out.append(ServerColumn(f.name, SERVER_TYPES[f.kind], f.nullable, Role.PLAIN, f.name, enum))
    if f.blind_index:
        col = blind_index_column(f)
        out.append(ServerColumn(col, BYTEA, f.nullable, Role.BLIND_INDEX, f.name))
    return out


def server_table(e: Entity) -> ServerTable:
    """The server table of entity ``e`` (built once per model entity: it is hot on sync)."""
    if BY_NAME.get(e.name) is e:
        return _model_table(e.name)
    return _build_table(e)


@cache
def _model_table(name: str) -> ServerTable:
    return _build_table(entity(name))


def _build_table(e: Entity) -> ServerTable:
    indexes = [_primary_key(e), *_unique_constraints(e), _pull_index(e)]
    indexes += [_model_index(e, i) for i in e.indexes if i.side != "local"]
    indexes += _blind_indexes(e)
    indexes += _foreign_key_indexes(e, indexes)
    return ServerTable(
        e.table,
        server_columns(e),
        tuple(indexes),
        _foreign_keys(e),
        row_security=True,
        entity=e.name,
    )


def accounts_table() -> ServerTable:
    """``accounts``: the crypto record of each user and their change sequence counter."""
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        # The user name a client logs in / uploads with; NULL for accounts known by id only.
        ServerColumn("name", "text", nullable=True),
        ServerColumn("salt", BYTEA),
        ServerColumn("kdf_params", "jsonb"),
        ServerColumn("wrapped_master_key", BYTEA),
        ServerColumn("auth_verifier", "text"),
        ServerColumn("created_at", TIMESTAMPTZ, default="now()"),
        ServerColumn("last_change_seq", "bigint", default="0"),
        # Tombstones up to this change sequence number were purged: a device whose cursor
        # is older missed deletes and must resync in full.
        ServerColumn("horizon_seq", "bigint", default="0"),
    )
    pk = ServerIndex(
        f"{ACCOUNTS}_pkey",
        (USER_ID,),
        "log in; reserve change sequence numbers for a push",
        unique=True,
        constraint="PRIMARY KEY",
    )
    by_name = ServerIndex(
        f"uq_{ACCOUNTS}_name",
        ("name",),
        "find an account by user name (log in, upload, download); one account per name",
        unique=True,
        constraint="UNIQUE",
    )
    return ServerTable(ACCOUNTS, columns, (pk, by_name), force_row_security=False)


def meta_table() -> ServerTable:
    """``duru_meta``: which model and server schema made this database."""
    columns = (ServerColumn("key", "text"), ServerColumn("value", "text"))
    pk = ServerIndex(
        f"{META}_pkey", ("key",), "read one setting", unique=True, constraint="PRIMARY KEY"
    )
    return ServerTable(META, columns, (pk,), row_security=False)


def secrets_table() -> ServerTable:
    """``duru_secrets``: values only the schema owner reads (no grant to the server role)."""
    columns = (ServerColumn("key", "text"), ServerColumn("value", BYTEA))
    pk = ServerIndex(
        f"{SECRETS}_pkey", ("key",), "read one secret", unique=True, constraint="PRIMARY KEY"
    )
    return ServerTable(SECRETS, columns, (pk,), row_security=False)


def sessions_table() -> ServerTable:
    """``sessions``: one row per login token (its SHA-256, never the token), until expiry."""
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        ServerColumn("token_hash", BYTEA),
        ServerColumn("created_at", TIMESTAMPTZ, default="now()"),
        ServerColumn("expires_at", TIMESTAMPTZ),
    )
    pk = ServerIndex(
        f"{SESSIONS}_pkey",
        (USER_ID, "token_hash"),
        "log out: delete one session of a user",
        unique=True,
        constraint="PRIMARY KEY",
    )
    by_token = ServerIndex(
        f"ix_{SESSIONS}_token_hash",
        ("token_hash",),
        "authenticate a request: the user of a token (duru_session_user)",
        unique=True,
    )
    return ServerTable(
        SESSIONS, columns, (pk, by_token), (_owner_key(SESSIONS),), force_row_security=False
    )


def applied_ops_table() -> ServerTable:
    """``applied_ops``: each pushed op id the server has acted on, and what it did."""
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        ServerColumn("op_id", "uuid"),
        ServerColumn("entity", "text"),
        ServerColumn("row_id", "uuid"),
        ServerColumn("outcome", "text"),
        ServerColumn("version", "bigint"),
        ServerColumn("applied_at", TIMESTAMPTZ, default="now()"),
    )
    pk = ServerIndex(
        f"{APPLIED_OPS}_pkey",
        (USER_ID, "op_id"),
        "push: was this op id applied already (a retried push applies once)",
        unique=True,
        constraint="PRIMARY KEY",
    )
    return ServerTable(APPLIED_OPS, columns, (pk,), (_owner_key(APPLIED_OPS),))


def conflicts_table() -> ServerTable:
    """``conflicts``: the losing side of a stale write, pulled by every device of the user."""
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        ServerColumn("id", "uuid"),
        ServerColumn("entity", "text"),
        ServerColumn("row_id", "uuid"),
        ServerColumn("kind", "text"),
        ServerColumn("base_version", "bigint"),
        ServerColumn("server_version", "bigint"),
        # The losing row as the device sent it (sealed fields stay sealed); NULL for a delete.
        ServerColumn("row", "jsonb", nullable=True),
        ServerColumn("device_id", "text"),
        ServerColumn("op_id", "uuid"),
        ServerColumn("created_at", TIMESTAMPTZ, default="now()"),
        ServerColumn(CHANGE_SEQ, "bigint"),
        # open; merged (a device merged it cleanly); copied (kept as a conflicted copy,
        # copy_id); revived (a delete lost to an edit); resolved (by the user)
        ServerColumn("status", "text", default="'open'"),
        ServerColumn("copy_id", "uuid", nullable=True),
    )
    pk = ServerIndex(
        f"{CONFLICTS}_pkey",
        (USER_ID, "id"),
        "one conflict revision by id",
        unique=True,
        constraint="PRIMARY KEY",
    )
    pull = ServerIndex(
        f"ix_{CONFLICTS}_{USER_ID}_{CHANGE_SEQ}",
        (USER_ID, CHANGE_SEQ),
        "pull: a user's conflict revisions after a cursor, in change order",
    )
    return ServerTable(CONFLICTS, columns, (pk, pull), (_owner_key(CONFLICTS),))


def login_failures_table() -> ServerTable:
    """``login_failures``: failed logins per account or address in the current window."""
    columns = (
        ServerColumn("key", "text"),
        ServerColumn("window_start", TIMESTAMPTZ),
        ServerColumn("failures", "integer"),
    )
    pk = ServerIndex(
        f"{LOGIN_FAILURES}_pkey",
        ("key",),
        "rate-limit logins: the failures of one account or address",
        unique=True,
        constraint="PRIMARY KEY",
    )
    return ServerTable(LOGIN_FAILURES, columns, (pk,), row_security=False)


def sync_tables() -> tuple[ServerTable, ...]:
    """The sync server's own tables (after ``accounts``, before the entities)."""
    return (sessions_table(), applied_ops_table(), conflicts_table(), login_failures_table())


def server_tables(entities: tuple[Entity, ...] = ENTITIES) -> tuple[ServerTable, ...]:
    """Every server table, in creation order (meta, accounts, then parents before children)."""
    return (
        meta_table(),
        secrets_table(),
        accounts_table(),
        *sync_tables(),
        *(server_table(e) for e in entities),
    )


def _owner_key(table: str) -> ServerForeignKey:
    return ServerForeignKey(f"fk_{table}_{USER_ID}", (USER_ID,), ACCOUNTS, (USER_ID,), "CASCADE")


def _primary_key(e: Entity) -> ServerIndex:
    return ServerIndex(
        f"{e.table}_pkey",
        (USER_ID, e.key),
        f"one {e.name} by {e.key}: upsert on push, fetch by id",
        unique=True,
        constraint="PRIMARY KEY",
    )


def _unique_constraints(e: Entity) -> list[ServerIndex]:
    out = []
    for names in e.unique:
        cols = tuple(server_column_of(e.field(n)) for n in names)
        # Live rows only: a tombstone must not block the same (note, tag) coming back.
        out.append(
            ServerIndex(
                f"uq_{e.table}_{'_'.join(cols)}",
                (USER_ID, *cols),
                f"one live {e.name} per ({', '.join(names)}) of a user",
                unique=True,
                where=f"({DELETED_AT} IS NULL)",
            )
        )
    return out


def _pull_index(e: Entity) -> ServerIndex:
    return ServerIndex(
        f"ix_{e.table}_{USER_ID}_{CHANGE_SEQ}",
        (USER_ID, CHANGE_SEQ),
        f"pull: a user's {e.table} changed after a cursor, in change order",
    )


def _model_index(e: Entity, ix: Index) -> ServerIndex:
    cols = tuple(server_column_of(e.field(n)) for n in ix.columns)
    return ServerIndex(
        e.index_name(ix),
        (USER_ID, *cols),
        ix.query,
        unique=ix.unique,
        where=predicate(e, ix.where),
    )


def _blind_indexes(e: Entity) -> list[ServerIndex]:
    return [
        ServerIndex(
            f"ix_{e.table}_{blind_index_column(f)}",
            (blind_index_column(f),),
            f"{e.table} whose {f.name} equals a value (equality on its blind index)",
            method="hash",
        )
        for f in e.fields
        if f.blind_index
    ]


def _foreign_key_indexes(e: Entity, existing: list[ServerIndex]) -> list[ServerIndex]:
    """An index (user_id, fk) for each foreign key no other index already leads with.

    ON DELETE CASCADE / SET NULL from the parent and "children of a parent" both look
    child rows up by these two columns.
    """
    covered = {ix.columns[:2] for ix in existing if ix.method == "btree" and not ix.where}
    out = []
    for f in e.foreign_keys:
        if (USER_ID, f.name) in covered:
            continue
        parent = entity(f.references or "")
        out.append(
            ServerIndex(
                f"ix_{e.table}_{f.name}",
                (USER_ID, f.name),
                f"the {e.table} of a {parent.name}; ON DELETE {f.on_delete} from {parent.table}",
            )
        )
    return out


def _foreign_keys(e: Entity) -> tuple[ServerForeignKey, ...]:
    out = [_owner_key(e.table)]
    for f in e.foreign_keys:
        parent = entity(f.references or "")
        action = f.on_delete or "NO ACTION"
        out.append(
            ServerForeignKey(
                f"fk_{e.table}_{f.name}",
                (USER_ID, f.name),
                parent.table,
                (USER_ID, parent.key),
                action,
                # A plain SET NULL would clear user_id too, which is NOT NULL.
                set_null=(f.name,) if action == "SET NULL" else (),
            )
        )
    return tuple(out)


def predicate(e: Entity, where: Mapping[str, object]) -> str:
    """A ``{field: value}`` filter as PostgreSQL prints it back (``(deleted = false)``).

    Tuple values become ``= ANY (ARRAY[...])``, PostgreSQL's own form of ``IN``.
    """
    terms = []
    for name, value in where.items():
        f = e.field(name)
        col = server_column_of(f)
        if isinstance(value, tuple):
            items = ", ".join(_literal(f, v) for v in value)
            terms.append(f"({col} = ANY (ARRAY[{items}]))")
        else:
            terms.append(f"({col} = {_literal(f, value)})")
    if len(terms) <= 1:
        return "".join(terms)
    return "(" + " AND ".join(terms) + ")"


def _literal(f: Field, value: object) -> str:
    match f.kind:
        case Kind.BOOL:
            return "true" if value else "false"
        case Kind.INT:
            return str(int(value))  # type: ignore[call-overload]
        case Kind.ENUM:
            f.enum.code(str(value))  # KeyError: not a member
            return f"'{value}'::text"
        case _:
            text = str(value).replace("'", "''")
            return f"'{text}'::{SERVER_TYPES[f.kind]}"
