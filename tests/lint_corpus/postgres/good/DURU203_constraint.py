"""Server migration 0007: link tags to notes without blocking writes."""

import psycopg


def up(cur: psycopg.Cursor) -> None:
    cur.execute("SET lock_timeout = %s", ("5s",)); cur.execute("SET statement_timeout = '30s'")
    cur.execute(
        """
        ALTER TABLE note_tags
          ADD CONSTRAINT note_tags_note_fk
          FOREIGN KEY (user_id, note_id) REFERENCES notes (user_id, id) NOT VALID
        """
    )
    cur.execute("ALTER TABLE note_tags VALIDATE CONSTRAINT note_tags_note_fk")
