"""Server migration 0001: accounts, devices, notes and the sync log (an empty database)."""

import psycopg

SCHEMA = [
    """
    CREATE TABLE accounts (
        id uuid PRIMARY KEY,
        email text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE devices (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        name varchar(64) NOT NULL,
        public_key bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE notes (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        ciphertext bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted boolean NOT NULL DEFAULT false
    )
    """,
    """
    CREATE TABLE sync_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL,
        device_id uuid NOT NULL,
        note_id uuid NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX notes_account_updated ON notes (account_id, updated_at)",
    "CREATE INDEX sync_log_account_version ON sync_log (account_id, version)",
    "CREATE INDEX devices_account ON devices (account_id)",
]


def up(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for statement in SCHEMA:
            conn.execute(statement)
