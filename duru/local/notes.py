"""Notes: create, edit, pin, trash, restore, purge, and the recent list.

Trash is a soft delete (``deleted`` = 1); trashed notes are read-only until
restored. Purging removes a note for good together with everything that
hangs off it, each row deleted explicitly so that each gets its outbox op
(the foreign keys' ON DELETE actions are only a safety net).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from duru.errors import ConstraintViolation, InvalidValue
from duru.local.db import Database
from duru.local.folders import file_note
from duru.local.links import release_incoming, resolve_waiting
from duru.local.reminders import delete_reminder
from duru.local.rows import change, check_limit, columns, live_note, require_live_note, select
from duru.local.schema import where_sql
from duru.local.tags import normalize_tag
from duru.model import ATTACHMENT, NOTE, NOTE_FOLDER, NOTE_LINK, NOTE_TAG, TASK, Row

_LIVE = live_note("x")
_TRASHED = where_sql(NOTE, {"deleted": True}, "x.")
_RECENT_ORDER = "ORDER BY x.is_pinned DESC, x.updated_at DESC, x.doc_id DESC"


@dataclass(frozen=True)
class RecentPage:
    """One page of :meth:`Notes.recent_page`; ``cursor`` fetches the next, None at the end."""

    rows: list[Row]
    cursor: str | None


def encode_cursor(is_pinned: int, updated_at: int, doc_id: int) -> str:
    """The opaque keyset cursor after a row of the recent list."""
    return f"{is_pinned}.{updated_at}.{doc_id}"


def decode_cursor(cursor: str) -> tuple[int, int, int]:
    """The (is_pinned, updated_at, doc_id) in ``cursor``; InvalidValue when malformed."""
    try:
        pinned, updated, doc = (int(p) for p in cursor.split("."))
    except (ValueError, AttributeError):
        raise InvalidValue(f"not a recent-notes cursor: {cursor!r}") from None
    return pinned, updated, doc


def tag_list(tags: Iterable[str]) -> list[str]:
    """Normalised tags without repeats, first occurrence first."""
    if isinstance(tags, str):
        raise InvalidValue("tags must be a list of tags, not one string")
    return list(dict.fromkeys(normalize_tag(t) for t in tags))


class Notes:
    """Notes. Every write goes through the outbox; each call is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        title: str = "",
        body: str = "",
        *,
        folder_id: str | None = None,
        tags: Iterable[str] = (),
        pinned: bool = False,
        note_type: str | int = "note",
    ) -> Row:
        """A new note, optionally filed and tagged; links waiting for its title resolve.

        Raises InvalidValue for bad values, NotFound for an unknown folder.
        """
        names = tag_list(tags)
        values = {"title": title, "body": body, "is_pinned": pinned, "note_type": note_type}
        with self.db.transaction():
            note = self.db.insert(NOTE, values)
            for tag in names:
                self.db.insert(NOTE_TAG, {"note_id": note["id"], "tag": tag})
            if folder_id is not None:
                file_note(self.db, note["id"], folder_id)
            resolve_waiting(self.db, note["id"], note["title"])
        return note

    def get(self, note_id: str) -> Row:
        """The note ``note_id``, live or trashed; NotFound when there is none."""
        return self.db.get(NOTE, note_id)

    def edit(self, note_id: str, *, title: str | None = None, body: str | None = None) -> Row:
        """Change a live note's title and/or body (None leaves it as it is).

        A new title resolves the links waiting for it. No write when nothing changes.
        """
        changes = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        with self.db.transaction():
            before = require_live_note(self.db, note_id)
            after = change(self.db, NOTE, note_id, changes)
            if after["title"] != before["title"]:
                resolve_waiting(self.db, note_id, after["title"])
        return after

    def pin(self, note_id: str) -> Row:
        """Pin a live note to the top of the recent list."""
        return self._set_live(note_id, is_pinned=True)

    def unpin(self, note_id: str) -> Row:
        """Unpin a live note."""
        return self._set_live(note_id, is_pinned=False)

    def trash(self, note_id: str) -> Row:
        """Move a note to the trash (soft delete); trashing twice writes once."""
        return change(self.db, NOTE, note_id, {"deleted": True})

    def restore(self, note_id: str) -> Row:
        """Bring a note back from the trash; links waiting for its title resolve."""
        with self.db.transaction():
            note = change(self.db, NOTE, note_id, {"deleted": False})
            resolve_waiting(self.db, note_id, note["title"])
        return note

    def purge(self, note_id: str, *, force: bool = False) -> Row:
        """Delete a trashed note for good, with its tags, tasks, reminders, filing,
        attachments and outgoing links; links to it wait for another note of its title.

        Raises ConstraintViolation for a live note unless ``force``.
        """
        with self.db.transaction():
            note = self.db.get(NOTE, note_id)
            if not note["deleted"] and not force:
                raise ConstraintViolation(
                    f"note {note_id} is not in the trash; trash it first (or force the purge)"
                )
            _purge_dependents(self.db, note_id)
            return self.db.delete(NOTE, note_id)

    def empty_trash(self) -> int:
        """Purge every trashed note; returns how many went."""
        with self.db.transaction():
            ids = [r[0] for r in self.db.conn.execute(f"SELECT id FROM notes x WHERE {_TRASHED}")]
            for note_id in ids:
                self.purge(note_id)
        return len(ids)

    def list_recent(self, limit: int = 50, offset: int = 0) -> list[Row]:
        """Live notes, pinned first, then most recently updated first.

        A walk of the partial index ix_notes_is_pinned_updated_at; for deep
        paging prefer :meth:`recent_page`, whose cost does not grow with depth.
        """
        check_limit(limit, offset)
        return select(
            self.db, NOTE, f"WHERE {_LIVE} {_RECENT_ORDER} LIMIT ? OFFSET ?", (limit, offset)
        )

    def recent_page(self, limit: int = 50, after: str | None = None) -> RecentPage:
        """A page of :meth:`list_recent` that starts after ``after`` (keyset paging).

        Raises InvalidValue for a malformed cursor.
        """
        check_limit(limit)
        where, params = _LIVE, [limit]
        if after is not None:
            where += " AND (x.is_pinned, x.updated_at, x.doc_id) < (?, ?, ?)"
            params = [*decode_cursor(after), limit]
        sql = f"SELECT {columns(NOTE, 'x')}, x.doc_id FROM notes x WHERE {where} {_RECENT_ORDER}"
        rows = self.db.rows(f"{sql} LIMIT ?", params)
        cursor = None
        if len(rows) == limit:
            last = rows[-1]
            cursor = encode_cursor(last["is_pinned"], last["updated_at"], last["doc_id"])
        for row in rows:
            del row["doc_id"]
        return RecentPage(rows, cursor)

    def list_trash(self, limit: int = 50, offset: int = 0) -> list[Row]:
        """Trashed notes, most recently changed (trashed) first; uses ix_notes_updated_at."""
        check_limit(limit, offset)
        return select(
            self.db,
            NOTE,
            f"WHERE {_TRASHED} ORDER BY x.updated_at DESC, x.doc_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )

    def count(self, *, trashed: bool = False) -> int:
        """How many live (or, with ``trashed``, trashed) notes there are."""
        where = _TRASHED if trashed else _LIVE
        return int(self.db.scalar(f"SELECT count(*) FROM notes x WHERE {where}"))

    def _set_live(self, note_id: str, **changes: object) -> Row:
        with self.db.transaction():
            require_live_note(self.db, note_id)
            return change(self.db, NOTE, note_id, changes)


def _purge_dependents(db: Database, note_id: str) -> None:
    _purge_tasks(db, note_id)
    reminders = db.conn.execute("SELECT id FROM reminders WHERE note_id = ?", (note_id,))
    for (rid,) in reminders.fetchall():
        delete_reminder(db, rid)
    for table, ent, key in (
        ("attachments", ATTACHMENT, "note_id"),
        ("note_tags", NOTE_TAG, "note_id"),
        ("note_folders", NOTE_FOLDER, "note_id"),
        ("note_links", NOTE_LINK, "source_id"),
    ):
        found = db.conn.execute(f"SELECT {ent.key} FROM {table} WHERE {key} = ?", (note_id,))
        for (row_key,) in found.fetchall():
            db.delete(ent, row_key)
    release_incoming(db, note_id)


def _purge_tasks(db: Database, note_id: str) -> None:
    """Delete the note's tasks leaves first, so no ON DELETE CASCADE fires unseen."""
    # Subtasks filed on other notes (only a damaged import makes them) are kept, detached.
    strays = db.conn.execute(
        "SELECT c.id FROM tasks c JOIN tasks p ON c.parent_task_id = p.id"
        " WHERE p.note_id = ? AND c.note_id <> p.note_id",
        (note_id,),
    ).fetchall()
    for (task_id,) in strays:
        db.update(TASK, task_id, {"parent_task_id": None})
    while leaves := db.conn.execute(
        "SELECT t.id FROM tasks t WHERE t.note_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_task_id = t.id)",
        (note_id,),
    ).fetchall():
        for (task_id,) in leaves:
            db.delete(TASK, task_id)
    # Whatever is left sits on a cycle (again only from a damaged import): cut, then delete.
    left = db.conn.execute("SELECT id FROM tasks WHERE note_id = ?", (note_id,)).fetchall()
    for (task_id,) in left:
        db.update(TASK, task_id, {"parent_task_id": None})
    for (task_id,) in left:
        db.delete(TASK, task_id)
