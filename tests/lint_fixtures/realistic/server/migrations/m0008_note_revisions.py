"""Server migration 0008: keep the last revisions of every note for conflict recovery."""

import psycopg

CREATE = """
CREATE TABLE note_revisions (
    note_id uuid NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    revision integer NOT NULL,
    device_id uuid NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (note_id, revision)
)
"""


def up(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '5s'")
        conn.execute("SET LOCAL statement_timeout = '30s'")
        conn.execute(CREATE)
        conn.execute("CREATE INDEX note_revisions_device ON note_revisions (device_id)")
        conn.execute(
            "ALTER TABLE notes ADD COLUMN revision integer NOT NULL DEFAULT 0"
        )
