"""Server migration 0007: tags, linked to notes with a foreign key added without a long lock."""

import psycopg

STEPS = (
    "SET lock_timeout = '5s'",
    "SET statement_timeout = '30s'",
    """
    CREATE TABLE IF NOT EXISTS note_tags (
        note_id uuid NOT NULL,
        tag text NOT NULL,
        PRIMARY KEY (note_id, tag)
    )
    """,
    """
    ALTER TABLE note_tags
      ADD CONSTRAINT note_tags_note_fk FOREIGN KEY (note_id) REFERENCES notes (id) NOT VALID
    """,
)


def up(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        for step in STEPS:
            cur.execute(step)
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE note_tags VALIDATE CONSTRAINT note_tags_note_fk")
