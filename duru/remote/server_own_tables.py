"""The server's own tables, beside the model's: accounts, meta, secrets, sessions, and sync's.

``accounts`` (one row per user: the crypto record, the change sequence
counter, the tombstone horizon), ``duru_meta``, ``duru_secrets`` (owner
only), the sync server's ``sessions``, ``applied_ops``, ``conflicts`` and
``login_failures``, and the encrypted snapshots of whole devices (``snapshots``,
``snapshot_parts``); see :mod:`duru.remote.layout` for what each holds.
"""

from __future__ import annotations

from duru.remote.layout_words import (
    ACCOUNTS,
    APPLIED_OPS,
    BYTEA,
    CHANGE_SEQ,
    CONFLICTS,
    LOGIN_FAILURES,
    META,
    SECRETS,
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
        SESSIONS, columns, (pk, by_token), (owner_key(SESSIONS),), force_row_security=False
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
    return ServerTable(APPLIED_OPS, columns, (pk,), (owner_key(APPLIED_OPS),))


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
    return ServerTable(CONFLICTS, columns, (pk, pull), (owner_key(CONFLICTS),))


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


def snapshots_table() -> ServerTable:
    """``snapshots``: a device's encrypted copy of its whole database, at a change cursor.

    ``complete`` is false while the upload runs; a user keeps at most one complete one.
    """
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        ServerColumn("id", "uuid"),
        ServerColumn(CHANGE_SEQ, "bigint"),
        ServerColumn("bytes", "bigint"),
        ServerColumn("complete", "boolean", default="false"),
        ServerColumn("created_at", TIMESTAMPTZ, default="now()"),
    )
    pk = ServerIndex(
        f"{SNAPSHOTS}_pkey",
        (USER_ID, "id"),
        "a user's snapshots: the complete one to download, stale uploads to delete",
        unique=True,
        constraint="PRIMARY KEY",
    )
    return ServerTable(SNAPSHOTS, columns, (pk,), (owner_key(SNAPSHOTS),))


def snapshot_parts_table() -> ServerTable:
    """``snapshot_parts``: a snapshot's bytes, cut into numbered parts (opaque ciphertext)."""
    columns = (
        ServerColumn(USER_ID, "uuid", role=Role.OWNER),
        ServerColumn("snapshot_id", "uuid"),
        ServerColumn("part", "integer"),
        ServerColumn("data", BYTEA, storage="EXTERNAL"),
    )
    pk = ServerIndex(
        f"{SNAPSHOT_PARTS}_pkey",
        (USER_ID, "snapshot_id", "part"),
        "download: one part of a snapshot, in order; ON DELETE CASCADE from snapshots",
        unique=True,
        constraint="PRIMARY KEY",
    )
    parent = ServerForeignKey(
        f"fk_{SNAPSHOT_PARTS}_snapshot_id",
        (USER_ID, "snapshot_id"),
        SNAPSHOTS,
        (USER_ID, "id"),
        "CASCADE",
    )
    return ServerTable(SNAPSHOT_PARTS, columns, (pk,), (owner_key(SNAPSHOT_PARTS), parent))


def snapshot_tables() -> tuple[ServerTable, ...]:
    """The tables of encrypted snapshots (server schema 3), parent first."""
    return (snapshots_table(), snapshot_parts_table())


def sync_tables() -> tuple[ServerTable, ...]:
    """The sync server's own tables (after ``accounts``, before the entities)."""
    return (
        sessions_table(),
        applied_ops_table(),
        conflicts_table(),
        login_failures_table(),
        *snapshot_tables(),
    )
