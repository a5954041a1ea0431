"""Links between notes, by title, resolved to a note id when one exists.

A link stores the title it was written with (``[[Groceries]]``) and, once a
live note has exactly that title, that note's id. A link to a title no note
has yet is kept with ``target_id`` NULL; creating, retitling or restoring a
note with that title fills it in, in the same transaction.

Finding the note for a title uses the device-only partial index
``ix_notes_title`` over live notes.
"""

from __future__ import annotations

from duru.errors import InvalidValue
from duru.local.db import Database
from duru.local.rows import live_note, require_live_note, require_note, select
from duru.model import NOTE, NOTE_LINK, Row


def check_title(title: object) -> str:
    """``title`` unchanged; InvalidValue when it is not text or is blank."""
    if not isinstance(title, str):
        raise InvalidValue(f"a link target title must be text, not {type(title).__name__}")
    if not title.strip():
        raise InvalidValue("a link target title may not be blank")
    return title


def resolve_title(db: Database, title: str, *, exclude: str | None = None) -> str | None:
    """The id of the oldest live note titled exactly ``title`` (not ``exclude``), or None."""
    found = db.scalar(
        f"SELECT n.id FROM notes n WHERE {live_note('n')} AND n.title = ? AND n.id IS NOT ?"
        " ORDER BY n.created_at, n.doc_id LIMIT 1",
        (title, exclude),
    )
    return None if found is None else str(found)


def resolve_waiting(db: Database, note_id: str, title: str) -> int:
    """Point every unresolved link to ``title`` at ``note_id``; returns how many.

    Served by ix_note_links_target_title. Call inside the transaction that
    created, retitled or restored the note: it then adds no savepoint of its
    own when no link waits (the common case, in every create).
    """
    with db.lock:  # whether a transaction is open is only known to its thread
        if not db.in_transaction:
            with db.transaction():
                return resolve_waiting(db, note_id, title)
        waiting = db.conn.execute(
            "SELECT id FROM note_links WHERE target_title = ? AND target_id IS NULL ORDER BY id",
            (title,),
        ).fetchall()
        if waiting:
            with db.transaction():
                for (link_id,) in waiting:
                    db.update(NOTE_LINK, link_id, {"target_id": note_id})
        return len(waiting)


def release_incoming(db: Database, note_id: str) -> int:
    """Before ``note_id`` goes for good: re-point its backlinks to another note of
    the same title, or leave them waiting (NULL). Returns how many links changed.

    Done explicitly, not by ON DELETE SET NULL, so each change gets its outbox row.
    """
    with db.transaction():
        incoming = select(db, NOTE_LINK, "WHERE x.target_id = ? ORDER BY x.id", (note_id,))
        for link in incoming:
            target = resolve_title(db, link["target_title"], exclude=note_id)
            db.update(NOTE_LINK, link["id"], {"target_id": target})
    return len(incoming)


class Links:
    """Links between notes. Every write goes through the outbox in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, source_id: str, target_title: str) -> Row:
        """Link a live note to the note titled ``target_title`` (or to the title alone).

        Idempotent per (source, title): a second add returns the first link.
        Raises NotFound for an unknown or trashed source, InvalidValue for a blank title.
        """
        title = check_title(target_title)
        with self.db.transaction():
            require_live_note(self.db, source_id)
            existing = select(
                self.db,
                NOTE_LINK,
                "WHERE x.source_id = ? AND x.target_title = ?",
                (source_id, title),
            )
            if existing:
                return existing[0]
            target = resolve_title(self.db, title)
            return self.db.insert(
                NOTE_LINK, {"source_id": source_id, "target_title": title, "target_id": target}
            )

    def get(self, link_id: str) -> Row:
        """The link ``link_id``; NotFound when there is none."""
        return self.db.get(NOTE_LINK, link_id)

    def remove(self, link_id: str) -> Row:
        """Delete a link; NotFound when there is none."""
        return self.db.delete(NOTE_LINK, link_id)

    def outgoing(self, note_id: str) -> list[Row]:
        """Links written in ``note_id``, by title (resolved or not)."""
        require_note(self.db, note_id)
        return select(
            self.db, NOTE_LINK, "WHERE x.source_id = ? ORDER BY x.target_title, x.id", (note_id,)
        )

    def backlinks(self, note_id: str) -> list[Row]:
        """Links from live notes that resolve to ``note_id``."""
        require_note(self.db, note_id)
        return select(
            self.db,
            NOTE_LINK,
            f"JOIN {NOTE.table} n ON n.id = x.source_id WHERE x.target_id = ? AND {live_note('n')}"
            " ORDER BY n.title, x.id",
            (note_id,),
        )

    def unresolved(self) -> list[Row]:
        """Links waiting for a note with their title."""
        return select(self.db, NOTE_LINK, "WHERE x.target_id IS NULL ORDER BY x.target_title, x.id")
