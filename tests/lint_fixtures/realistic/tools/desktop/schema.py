"""The desktop companion's local database: schema versions and how to reach them.

Each step runs in its own transaction (``with conn:``); PRAGMA user_version records
the step, so a crash between steps resumes at the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

Step = Callable[[sqlite3.Connection], None]


def _v1(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE notes (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL DEFAULT (datetime('now')),
            updated_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        CREATE TABLE folders (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            parent_id TEXT REFERENCES folders (id)
        );
        CREATE INDEX notes_updated ON notes (updated_at);
        """
    )


def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE notes ADD COLUMN folder_id TEXT REFERENCES folders (id)")
    conn.execute("CREATE INDEX notes_folder ON notes (folder_id)")


def _v3(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE tags ("
        "  note_id TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,"
        "  tag TEXT NOT NULL,"
        "  PRIMARY KEY (note_id, tag)"
        ") WITHOUT ROWID"
    )


def _v4(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE notes ADD COLUMN deleted_at TEXT NULL")
    conn.execute("UPDATE notes SET pinned = 1 WHERE title LIKE '📌%'")


def _v5(conn: sqlite3.Connection) -> None:
    # Full-text search; the external-content table is filled from notes once.
    conn.executescript(
        """
        CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, content='notes');
        INSERT INTO notes_fts (rowid, title, body) SELECT rowid, title, body FROM notes;
        CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
            INSERT INTO notes_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
        END;
        CREATE TRIGGER notes_ad AFTER DELETE ON notes BEGIN
            INSERT INTO notes_fts (notes_fts, rowid, title, body)
            VALUES ('delete', old.rowid, old.title, old.body);
        END;
        """
    )


STEPS: list[Step] = [_v1, _v2, _v3, _v4, _v5]


def migrate(path: Path) -> int:
    """Bring the database at `path` to the newest version; returns that version."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number, step in enumerate(STEPS[version:], start=version + 1):
            with conn:
                step(conn)
                conn.execute(f"PRAGMA user_version = {number}")
        return len(STEPS)
    finally:
        conn.close()
