"""Every entity of the app, declared once.

The device DDL, the server DDL, the bridge and the schema fingerprint are all
derived from this file; nothing else in duru lists an entity's columns.
Field names keep the app's names (``title``, ``is_pinned``, ``parent_task_id``).
"""

from __future__ import annotations

from duru.model.schema import Default, Entity, Field, Index, Search
from duru.model.types import (
    NOTE_TYPE,
    RECURRENCE,
    REMINDER_TYPE,
    TASK_PRIORITY,
    TASK_STATUS,
    Kind,
)

UUID, TEXT, INT, FLOAT = Kind.UUID, Kind.TEXT, Kind.INT, Kind.FLOAT
BOOL, TIMESTAMP, JSON = Kind.BOOL, Kind.TIMESTAMP, Kind.JSON

LIVE = {"deleted": False}


def _id() -> Field:
    return Field("id", UUID, doc="random uuid, made on the device")


def _stamps() -> tuple[Field, ...]:
    return (
        Field("created_at", TIMESTAMP, default=Default.NOW),
        Field("updated_at", TIMESTAMP, default=Default.NOW),
        Field("version", INT, default=0, doc="server version this row is based on; 0: never"),
    )


def _secret(
    name: str,
    kind: Kind = TEXT,
    *,
    nullable: bool = False,
    default: object = Default.NONE,
    remote: str | None = None,
    blind_index: bool = False,
    doc: str = "",
) -> Field:
    return Field(
        name,
        kind,
        nullable=nullable,
        default=default,
        secret=True,
        remote=remote,
        blind_index=blind_index,
        doc=doc,
    )


NOTE = Entity(
    "note",
    "notes",
    (
        _id(),
        _secret("title", default="", remote="title_enc"),
        _secret("body", default=""),
        Field("note_type", NOTE_TYPE, default="note"),
        Field("is_pinned", BOOL, default=False),
        Field("deleted", BOOL, default=False, doc="in the trash; purge removes the row"),
        _secret("metadata", nullable=True, doc="the app's encrypted_metadata, kept verbatim"),
        *_stamps(),
    ),
    indexes=(
        Index(("is_pinned", "updated_at"), "list recent, pinned first", where=LIVE),
        Index(("updated_at",), "list trash, newest first", where={"deleted": True}),
        Index(("title",), "resolve links by a note's title", where=LIVE, side="local"),
    ),
    search=Search(("title", "body"), only=LIVE),
)

FOLDER = Entity(
    "folder",
    "folders",
    (
        _id(),
        _secret("name", remote="name_enc"),
        Field("parent_id", UUID, nullable=True, references="folder", on_delete="RESTRICT"),
        Field("sort_order", INT, default=0),
        Field("color", TEXT, nullable=True),
        Field("icon", TEXT, nullable=True),
        _secret("description", nullable=True),
        Field("deleted", BOOL, default=False),
        *_stamps(),
    ),
    indexes=(Index(("parent_id", "sort_order"), "children of a folder, in order"),),
)

NOTE_FOLDER = Entity(
    "note_folder",
    "note_folders",
    (
        Field("note_id", UUID, references="note", on_delete="CASCADE"),
        Field("folder_id", UUID, references="folder", on_delete="CASCADE"),
        *_stamps(),
    ),
    key="note_id",
    indexes=(Index(("folder_id", "note_id"), "notes in a folder"),),
    doc="one folder per note: the note's id is the key",
)

NOTE_TAG = Entity(
    "note_tag",
    "note_tags",
    (
        _id(),
        Field("note_id", UUID, references="note", on_delete="CASCADE"),
        _secret("tag", remote="tag_enc", blind_index=True),
        *_stamps(),
    ),
    unique=(("note_id", "tag"),),
    indexes=(Index(("tag", "note_id"), "notes with a tag; tag counts", side="local"),),
)

NOTE_LINK = Entity(
    "note_link",
    "note_links",
    (
        _id(),
        Field("source_id", UUID, references="note", on_delete="CASCADE"),
        _secret("target_title"),
        Field(
            "target_id",
            UUID,
            nullable=True,
            references="note",
            on_delete="SET NULL",
            doc="null while no note has the target title",
        ),
        *_stamps(),
    ),
    indexes=(
        Index(("source_id",), "links of a note"),
        Index(("target_id",), "backlinks of a note"),
        Index(("target_title",), "links waiting for a note of that title", side="local"),
    ),
)

REMINDER = Entity(
    "reminder",
    "reminders",
    (
        _id(),
        Field("note_id", UUID, references="note", on_delete="CASCADE"),
        _secret("title", default=""),
        _secret("body", default=""),
        Field("type", REMINDER_TYPE, default="time"),
        Field("remind_at", TIMESTAMP, nullable=True),
        Field("is_active", BOOL, default=True),
        _secret("latitude", FLOAT, nullable=True),
        _secret("longitude", FLOAT, nullable=True),
        _secret("radius", FLOAT, nullable=True),
        _secret("location_name", nullable=True),
        Field("recurrence_pattern", RECURRENCE, default="none"),
        Field("recurrence_end_date", TIMESTAMP, nullable=True),
        Field("recurrence_interval", INT, default=1),
        Field("snoozed_until", TIMESTAMP, nullable=True),
        Field("snooze_count", INT, default=0),
        _secret("notification_title", nullable=True),
        _secret("notification_body", nullable=True),
        _secret("notification_image", nullable=True),
        Field("time_zone", TEXT, nullable=True),
        Field("last_triggered", TIMESTAMP, nullable=True),
        Field("trigger_count", INT, default=0),
        *_stamps(),
    ),
    indexes=(
        Index(("note_id",), "reminders of a note"),
        Index(("remind_at",), "upcoming reminders", where={"is_active": True}),
    ),
)

TASK = Entity(
    "task",
    "tasks",
    (
        _id(),
        Field("note_id", UUID, references="note", on_delete="CASCADE"),
        Field("parent_task_id", UUID, nullable=True, references="task", on_delete="CASCADE"),
        _secret("content", remote="content_enc"),
        Field("status", TASK_STATUS, default="open"),
        Field("priority", TASK_PRIORITY, default="medium"),
        Field("due_date", TIMESTAMP, nullable=True),
        Field("completed_at", TIMESTAMP, nullable=True),
        _secret("completed_by", nullable=True),
        Field("position", INT, default=0),
        Field("reminder_id", UUID, nullable=True, references="reminder", on_delete="SET NULL"),
        _secret("labels", JSON, nullable=True),
        _secret("notes", nullable=True),
        Field("estimated_minutes", INT, nullable=True),
        Field("actual_minutes", INT, nullable=True),
        Field("deleted", BOOL, default=False),
        *_stamps(),
    ),
    indexes=(
        Index(
            ("due_date", "priority"),
            "open tasks, due soonest first",
            where={"deleted": False, "status": ("open", "in_progress")},
        ),
        Index(("note_id", "position"), "tasks of a note, in order"),
        Index(("parent_task_id", "position"), "subtasks of a task, in order"),
        Index(("reminder_id",), "unlink tasks when their reminder goes"),
    ),
)

TEMPLATE = Entity(
    "template",
    "templates",
    (
        _id(),
        _secret("title", remote="title_enc"),
        _secret("body", default=""),
        _secret("tags", JSON, default=[]),
        Field("is_system", BOOL, default=False),
        _secret("category", nullable=True),
        _secret("description", nullable=True),
        Field("icon", TEXT, nullable=True),
        Field("sort_order", INT, default=0),
        _secret("metadata", JSON, nullable=True),
        *_stamps(),
    ),
    indexes=(Index(("sort_order",), "templates in order"),),
)

SAVED_SEARCH = Entity(
    "saved_search",
    "saved_searches",
    (
        _id(),
        _secret("name", remote="name_enc"),
        _secret("query", default=""),
        Field("search_type", TEXT, default="text", doc="the app's free-form kind of search"),
        _secret("parameters", JSON, nullable=True),
        Field("sort_order", INT, default=0),
        Field("color", TEXT, nullable=True),
        Field("icon", TEXT, nullable=True),
        Field("is_pinned", BOOL, default=False),
        Field("last_used_at", TIMESTAMP, nullable=True),
        Field("usage_count", INT, default=0),
        *_stamps(),
    ),
    indexes=(Index(("is_pinned", "sort_order"), "saved searches, pinned first"),),
)

ATTACHMENT = Entity(
    "attachment",
    "attachments",
    (
        _id(),
        Field("note_id", UUID, references="note", on_delete="CASCADE"),
        _secret("file_name"),
        _secret("mime_type", nullable=True),
        Field("size_bytes", INT, default=0),
        _secret("sha256", nullable=True, doc="of the plaintext file; secret, it identifies it"),
        Field("storage_key", TEXT, nullable=True, doc="where the encrypted blob is stored"),
        *_stamps(),
    ),
    indexes=(Index(("note_id",), "attachments of a note"),),
    doc="metadata only; the blob itself lives elsewhere",
)

# Parents before children: creating, loading and exporting go in this order.
ENTITIES: tuple[Entity, ...] = (
    NOTE,
    FOLDER,
    NOTE_FOLDER,
    NOTE_TAG,
    NOTE_LINK,
    REMINDER,
    TASK,
    TEMPLATE,
    SAVED_SEARCH,
    ATTACHMENT,
)

BY_NAME = {e.name: e for e in ENTITIES}
BY_TABLE = {e.table: e for e in ENTITIES}


def entity(name: str) -> Entity:
    """The entity called ``name`` (``note``) or stored in table ``name`` (``notes``)."""
    found = BY_NAME.get(name) or BY_TABLE.get(name)
    if found is None:
        raise KeyError(f"no entity {name!r}")
    return found
