"""Templates, saved searches and attachment metadata: small APIs over one table each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from duru.errors import InvalidValue
from duru.local.db import Database
from duru.local.notes import Notes, tag_list
from duru.local.rows import allow_only, change, require_live_note, require_note, select
from duru.model import ATTACHMENT, SAVED_SEARCH, TEMPLATE, Entity, Row, now_ms

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMPLATE_EXTRA = frozenset({"category", "description", "icon", "is_system", "metadata"})
_SEARCH_EXTRA = frozenset({"search_type", "parameters", "is_pinned", "color", "icon"})


def check_text(what: str, value: object) -> str:
    """``value`` unchanged; InvalidValue when it is not text or is blank."""
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidValue(f"{what} may not be blank")
    return value


def _editable(e: Entity) -> frozenset[str]:
    # The key, stamps and version belong to the store, never to an edit.
    return frozenset(e.field_names) - {e.key, "created_at", "updated_at", "version"}


def _next_sort_order(db: Database, e: Entity) -> int:
    last = db.scalar(f"SELECT max(sort_order) FROM {e.table}")
    return 0 if last is None else int(last) + 1


class Templates:
    """Note templates, in ``sort_order``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        title: str,
        body: str = "",
        *,
        tags: Iterable[str] = (),
        sort_order: int | None = None,
        **fields: object,
    ) -> Row:
        """A new template, last in order unless ``sort_order`` is given.

        ``fields`` may set ``category``, ``description``, ``icon``, ``is_system``, ``metadata``.
        """
        allow_only("a new template", fields, _TEMPLATE_EXTRA)
        values = {"title": check_text("a template title", title), "body": body, **fields}
        values["tags"] = tag_list(tags)
        with self.db.transaction():
            order = _next_sort_order(self.db, TEMPLATE) if sort_order is None else sort_order
            return self.db.insert(TEMPLATE, {**values, "sort_order": order})

    def get(self, template_id: str) -> Row:
        """The template ``template_id``; NotFound when there is none."""
        return self.db.get(TEMPLATE, template_id)

    def list(self) -> list[Row]:
        """Every template in ``sort_order`` (served by ix_templates_sort_order)."""
        return select(self.db, TEMPLATE, "ORDER BY x.sort_order, x.id")

    def edit(self, template_id: str, **changes: object) -> Row:
        """Change some fields of a template; no write when nothing changes."""
        allow_only("a template edit", changes, _editable(TEMPLATE))
        if "title" in changes:
            check_text("a template title", changes["title"])
        if "tags" in changes:
            changes["tags"] = tag_list(changes["tags"])  # type: ignore[arg-type]
        return change(self.db, TEMPLATE, template_id, changes)

    def delete(self, template_id: str) -> Row:
        """Delete a template; notes made from it stay."""
        return self.db.delete(TEMPLATE, template_id)

    def instantiate(self, template_id: str, *, folder_id: str | None = None) -> Row:
        """A new note from the template's title, body and tags (one transaction)."""
        with self.db.transaction():
            template = self.db.get(TEMPLATE, template_id)
            tags = json.loads(template["tags"])
            return Notes(self.db).create(
                template["title"], template["body"], tags=tags, folder_id=folder_id
            )


class SavedSearches:
    """Saved searches: pinned first, then in ``sort_order``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        query: str = "",
        *,
        sort_order: int | None = None,
        **fields: object,
    ) -> Row:
        """A new saved search, last in order unless ``sort_order`` is given.

        ``fields`` may set ``search_type``, ``parameters``, ``is_pinned``, ``color``, ``icon``.
        """
        allow_only("a new saved search", fields, _SEARCH_EXTRA)
        values = {"name": check_text("a saved search name", name), "query": query, **fields}
        with self.db.transaction():
            order = _next_sort_order(self.db, SAVED_SEARCH) if sort_order is None else sort_order
            return self.db.insert(SAVED_SEARCH, {**values, "sort_order": order})

    def get(self, search_id: str) -> Row:
        """The saved search ``search_id``; NotFound when there is none."""
        return self.db.get(SAVED_SEARCH, search_id)

    def list(self) -> list[Row]:
        """Pinned searches then the others, each in ``sort_order``.

        Two walks of ix_saved_searches_is_pinned_sort_order, no sort.
        """
        order = "ORDER BY x.sort_order"
        pinned = select(self.db, SAVED_SEARCH, f"WHERE x.is_pinned = 1 {order}")
        return pinned + select(self.db, SAVED_SEARCH, f"WHERE x.is_pinned = 0 {order}")

    def edit(self, search_id: str, **changes: object) -> Row:
        """Change some fields of a saved search; no write when nothing changes."""
        allow_only("a saved search edit", changes, _editable(SAVED_SEARCH))
        if "name" in changes:
            check_text("a saved search name", changes["name"])
        return change(self.db, SAVED_SEARCH, search_id, changes)

    def touch(self, search_id: str) -> Row:
        """Record one use: usage_count + 1 and last_used_at = now."""
        with self.db.transaction():
            current = self.db.get(SAVED_SEARCH, search_id)
            return self.db.update(
                SAVED_SEARCH,
                search_id,
                {"usage_count": current["usage_count"] + 1, "last_used_at": now_ms()},
            )

    def delete(self, search_id: str) -> Row:
        """Delete a saved search; NotFound when there is none."""
        return self.db.delete(SAVED_SEARCH, search_id)


class Attachments:
    """Attachment metadata of notes (the blobs live elsewhere)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        note_id: str,
        file_name: str,
        *,
        size_bytes: int = 0,
        sha256: str | None = None,
        **fields: object,
    ) -> Row:
        """Record an attachment of a live note.

        ``sha256`` is 64 lower-case hex digits; ``fields`` may set ``mime_type``
        and ``storage_key``. Raises NotFound for an unknown or trashed note.
        """
        allow_only("a new attachment", fields, frozenset({"mime_type", "storage_key"}))
        check_text("an attachment file name", file_name)
        if isinstance(size_bytes, int) and not isinstance(size_bytes, bool) and size_bytes < 0:
            raise InvalidValue(f"size_bytes may not be negative ({size_bytes})")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise InvalidValue(f"sha256 must be 64 lower-case hex digits, not {sha256!r}")
        values = {"note_id": note_id, "file_name": file_name, "size_bytes": size_bytes}
        with self.db.transaction():
            require_live_note(self.db, note_id)
            return self.db.insert(ATTACHMENT, {**values, "sha256": sha256, **fields})

    def get(self, attachment_id: str) -> Row:
        """The attachment ``attachment_id``; NotFound when there is none."""
        return self.db.get(ATTACHMENT, attachment_id)

    def list_for_note(self, note_id: str) -> list[Row]:
        """The note's attachments, oldest first (served by ix_attachments_note_id)."""
        require_note(self.db, note_id)
        return select(
            self.db, ATTACHMENT, "WHERE x.note_id = ? ORDER BY x.created_at, x.rowid", (note_id,)
        )

    def remove(self, attachment_id: str) -> Row:
        """Delete an attachment's metadata; NotFound when there is none."""
        return self.db.delete(ATTACHMENT, attachment_id)
