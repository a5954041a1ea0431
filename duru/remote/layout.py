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
limits, per account and per address), ``snapshots`` and ``snapshot_parts`` (a device's
encrypted copy of its whole database, in 1 MiB parts, for a new device's first sync) and
``duru_secrets`` (owner only: the server role's
password and the key that makes answers for unknown user names look like real ones).

This module builds the model's tables; the shapes and shared names are in
:mod:`duru.remote.layout_words`, the server's own tables in
:mod:`duru.remote.server_own_tables`, both re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from duru.model import BY_NAME, ENTITIES, PROPS_COLUMN, Entity, Field, Index, Kind, entity
from duru.remote.layout_words import (
    ACCOUNTS,
    APPLIED_OPS,
    BYTEA,
    CHANGE_SEQ,
    CONFLICTS,
    DELETED_AT,
    LOGIN_FAILURES,
    META,
    OWNER_ONLY_TABLES,
    ROW_MAC,
    SECRETS,
    SERVER_ONLY_COLUMNS,
    SERVER_TYPES,
    SESSIONS,
    SNAPSHOT_PARTS,
    SNAPSHOTS,
    TIMESTAMPTZ,
    USER_ID,
    Role,
    ServerColumn,
    ServerForeignKey,
    ServerIndex,
    ServerTable,
    owner_key,
)
from duru.remote.server_own_tables import (
    accounts_table,
    applied_ops_table,
    conflicts_table,
    login_failures_table,
    meta_table,
    secrets_table,
    sessions_table,
    snapshot_parts_table,
    snapshot_tables,
    snapshots_table,
    sync_tables,
)

__all__ = [
    "ACCOUNTS",
    "APPLIED_OPS",
    "BYTEA",
    "CHANGE_SEQ",
    "CONFLICTS",
    "DELETED_AT",
    "LOGIN_FAILURES",
    "META",
    "OWNER_ONLY_TABLES",
    "ROW_MAC",
    "SECRETS",
    "SERVER_ONLY_COLUMNS",
    "SERVER_TYPES",
    "SESSIONS",
    "SNAPSHOTS",
    "SNAPSHOT_PARTS",
    "TIMESTAMPTZ",
    "USER_ID",
    "Role",
    "ServerColumn",
    "ServerForeignKey",
    "ServerIndex",
    "ServerTable",
    "accounts_table",
    "applied_ops_table",
    "blind_index_column",
    "cleared_column",
    "conflicts_table",
    "login_failures_table",
    "mac_columns",
    "meta_table",
    "owner_key",
    "predicate",
    "secrets_table",
    "server_column_of",
    "server_columns",
    "server_table",
    "server_tables",
    "sessions_table",
    "snapshot_parts_table",
    "snapshot_tables",
    "snapshots_table",
    "sync_tables",
]


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


def server_tables(entities: tuple[Entity, ...] = ENTITIES) -> tuple[ServerTable, ...]:
    """Every server table, in creation order (meta, accounts, then parents before children)."""
    return (
        meta_table(),
        secrets_table(),
        accounts_table(),
        *sync_tables(),
        *(server_table(e) for e in entities),
    )


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
    out = [owner_key(e.table)]
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
