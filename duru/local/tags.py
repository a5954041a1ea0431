"""Tags of notes: free-text labels, one ``note_tags`` row per (note, tag).

A tag is normalised by stripping surrounding whitespace; case is kept, so
``Work`` and ``work`` are two tags (the app shows what the user typed). An
empty tag is refused with InvalidValue.
"""

from __future__ import annotations

from collections.abc import Iterable

from duru.errors import InvalidValue
from duru.local.db import Database
from duru.local.rows import live_note, require_live_note, require_note, select
from duru.model import NOTE, NOTE_TAG, Row, to_local

_TAG = NOTE_TAG.field("tag")


def normalize_tag(tag: object) -> str:
    """The stored form of ``tag``: surrounding whitespace stripped, case kept.

    Raises InvalidValue for a non-text or empty tag, or text that is not UTF-8.
    """
    if not isinstance(tag, str):
        raise InvalidValue(f"a tag must be text, not {type(tag).__name__}")
    cleaned = tag.strip()
    if not cleaned:
        raise InvalidValue("a tag may not be empty")
    return str(to_local(_TAG, cleaned))  # the model's text check: UTF-8 only


def add_tag(db: Database, note_id: str, tag: object) -> Row:
    """Tag a live note; returns the existing row when it already has the tag."""
    name = normalize_tag(tag)
    with db.transaction():
        require_live_note(db, note_id)
        found = _find(db, note_id, name)
        return (
            found if found is not None else db.insert(NOTE_TAG, {"note_id": note_id, "tag": name})
        )


def _find(db: Database, note_id: str, tag: str) -> Row | None:
    # Served by the UNIQUE (note_id, tag) index.
    found = select(db, NOTE_TAG, "WHERE x.note_id = ? AND x.tag = ?", (note_id, tag))
    return found[0] if found else None


class Tags:
    """Tags of notes. Every write goes through the outbox in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, note_id: str, tag: str) -> Row:
        """Tag a note (idempotent: tagging twice keeps one row, one outbox op).

        Raises NotFound for an unknown or trashed note, InvalidValue for an empty tag.
        """
        return add_tag(self.db, note_id, tag)

    def remove(self, note_id: str, tag: str) -> bool:
        """Untag a note; False (and no write) when it did not have the tag."""
        name = normalize_tag(tag)
        with self.db.transaction():
            found = _find(self.db, note_id, name)
            if found is None:
                return False
            self.db.delete(NOTE_TAG, found["id"])
            return True

    def set_for(self, note_id: str, tags: Iterable[str]) -> list[str]:
        """Make the note's tags exactly ``tags``, writing only the differences."""
        wanted = {normalize_tag(t) for t in tags}
        with self.db.transaction():
            require_live_note(self.db, note_id)
            have = set(self.list_for(note_id))
            for tag in sorted(have - wanted):
                self.remove(note_id, tag)
            for tag in sorted(wanted - have):
                self.db.insert(NOTE_TAG, {"note_id": note_id, "tag": tag})
        return sorted(wanted)

    def rename(self, old: str, new: str) -> int:
        """Rename a tag on every note (trashed ones too); returns the rows changed.

        A note that already has ``new`` keeps its one ``new`` row and loses the
        ``old`` row, so nothing is duplicated and no note loses a tag.
        """
        old_name, new_name = normalize_tag(old), normalize_tag(new)
        if old_name == new_name:
            return 0
        with self.db.transaction():
            rows = select(self.db, NOTE_TAG, "WHERE x.tag = ? ORDER BY x.note_id", (old_name,))
            for row in rows:
                if _find(self.db, row["note_id"], new_name) is None:
                    self.db.update(NOTE_TAG, row["id"], {"tag": new_name})
                else:
                    self.db.delete(NOTE_TAG, row["id"])
        return len(rows)

    def list_for(self, note_id: str) -> list[str]:
        """The note's tags, sorted; NotFound for an unknown note."""
        require_note(self.db, note_id)
        rows = self.db.rows("SELECT tag FROM note_tags WHERE note_id = ? ORDER BY tag", (note_id,))
        return [str(r["tag"]) for r in rows]

    def counts(self) -> dict[str, int]:
        """Tag -> number of live notes carrying it, sorted by tag; unused tags left out.

        Walks ix_note_tags_tag_note_id in order, so no sort is needed.
        """
        rows = self.db.rows(
            "SELECT t.tag, count(*) AS n FROM note_tags t"
            f" WHERE EXISTS (SELECT 1 FROM notes n WHERE n.id = t.note_id AND {live_note('n')})"
            " GROUP BY t.tag ORDER BY t.tag"
        )
        return {str(r["tag"]): int(r["n"]) for r in rows}

    def notes_with(self, tag: str) -> list[Row]:
        """Live notes carrying ``tag``, most recently updated first."""
        return select(
            self.db,
            NOTE,
            f"JOIN note_tags t ON t.note_id = x.id WHERE t.tag = ? AND {live_note('x')}"
            " ORDER BY x.updated_at DESC, x.doc_id DESC",
            (normalize_tag(tag),),
        )
