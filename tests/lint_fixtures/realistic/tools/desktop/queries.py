"""Read and write queries of the desktop app (no schema changes)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

LIST_RECENT = """
    SELECT id, title, updated_at
    FROM notes
    WHERE deleted_at IS NULL
    ORDER BY pinned DESC, updated_at DESC
    LIMIT :limit
"""

SEARCH = """
    SELECT n.id, snippet(notes_fts, 1, '[', ']', '…', 12) AS excerpt
    FROM notes_fts JOIN notes AS n ON n.rowid = notes_fts.rowid
    WHERE notes_fts MATCH :query AND n.deleted_at IS NULL
    ORDER BY rank
    LIMIT 50
"""

UPSERT = (
    "INSERT INTO notes (id, title, body, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, "
    "updated_at = excluded.updated_at WHERE excluded.updated_at > notes.updated_at"
)

TRASH = "UPDATE notes SET deleted_at = datetime('now') WHERE id = ?"
RESTORE = "UPDATE notes SET deleted_at = NULL WHERE id = ?"
PURGE = "DELETE FROM notes WHERE deleted_at < datetime('now', '-30 days')"

CONFIRM_PURGE = "Delete notes from the trash permanently?"
SELECT_HINT = "Select a note to read it"


@dataclass(frozen=True)
class NoteRow:
    id: str
    title: str
    updated_at: str


def recent(conn: sqlite3.Connection, limit: int = 20) -> list[NoteRow]:
    return [NoteRow(*row) for row in conn.execute(LIST_RECENT, {"limit": limit})]


def search(conn: sqlite3.Connection, query: str) -> list[tuple[str, str]]:
    return conn.execute(SEARCH, {"query": query}).fetchall()


def save(conn: sqlite3.Connection, note_id: str, title: str, body: str, stamp: str) -> None:
    with conn:
        conn.execute(UPSERT, (note_id, title, body, stamp))


def tag_counts(conn: sqlite3.Connection) -> dict[str, int]:
    sql = f"SELECT tag, count(*) FROM tags GROUP BY tag ORDER BY {'count(*) DESC'}"
    return dict(conn.execute(sql).fetchall())
