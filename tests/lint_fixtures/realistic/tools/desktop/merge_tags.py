"""Version 7: tags are case-insensitive. "Work" and "work" on one note become one tag.

Written in a hurry for the 0.9 release; kept because databases at version 6 still
exist in the wild.
"""

from __future__ import annotations

import sqlite3


def migrate(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        PRAGMA foreign_keys = OFF;
        BEGIN;
        CREATE TABLE tags_new (
            note_id TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
            tag TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (note_id, tag)
        ) WITHOUT ROWID;
        INSERT OR REPLACE INTO tags_new SELECT * FROM tags;
        DROP TABLE tags;
        ALTER TABLE tags_new RENAME TO tags;
        COMMIT;
        PRAGMA foreign_keys = ON;
        PRAGMA user_version = 7;
        """
    )
