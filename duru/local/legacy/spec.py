"""The version 11 device schema, as far as the import needs to know it.

Only what the model cannot tell is written here: which model entity each
legacy table fills, which columns identify a row, which hold references, the
few columns whose name differs from the model's field, and the columns duru
derives itself. Every other legacy column is matched to the model field of
the same name, so the model stays the one list of columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from duru.model import (
    FOLDER,
    NOTE,
    NOTE_FOLDER,
    NOTE_LINK,
    NOTE_TAG,
    REMINDER,
    SAVED_SEARCH,
    TASK,
    TEMPLATE,
    Entity,
    Field,
)

LEGACY_VERSION = 11

# Never imported from a legacy file: a fresh import has not been synced yet.
_NOT_FROM_LEGACY = frozenset({"version"})


@dataclass(frozen=True)
class Ref:
    """A legacy column holding the id of a row of ``table``.

    ``needed``: a row whose referenced row is not imported is an orphan and
    goes to quarantine; otherwise the reference is cleared (the model's
    ``SET NULL``) and the row comes through. ``parent`` marks the reference to
    a row of the same table (folder and task trees).
    """

    column: str
    table: str
    needed: bool
    parent: bool = False


@dataclass(frozen=True)
class LegacyTable:
    """One table of a version 11 file and how its rows reach the model.

    ``key`` names the columns that identify a row; a key of one column called
    ``id`` is the row's own id, any other key is hashed into one
    (:func:`duru.local.legacy.values.composite_id`). ``entity`` is None for
    tables that are accounted for but not imported (pending ops, the old
    search index), whose v11 columns are then listed in ``columns``.
    """

    name: str
    entity: Entity | None
    key: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    renames: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    derived: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    optional: bool = False

    @property
    def own_id(self) -> bool:
        return self.key == ("id",)

    @property
    def parent(self) -> Ref | None:
        return next((r for r in self.refs if r.parent), None)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns without which a file is not version 11 (keys and needed references)."""
        needed = [r.column for r in self.refs if r.needed]
        return tuple(dict.fromkeys([*self.key, *needed]))

    def ref(self, column: str) -> Ref | None:
        return next((r for r in self.refs if r.column == column), None)

    def field_for(self, column: str) -> Field | None:
        """The model field a legacy column fills; None for derived and unknown columns."""
        if self.entity is None or column in self.derived or column in _NOT_FROM_LEGACY:
            return None
        name = self.renames.get(column, column)
        return self.entity.field(name) if name in self.entity.field_names else None

    def knows(self, column: str) -> bool:
        """True for every column of the v11 table (mapped, derived or accounted-only)."""
        return (
            column in self.columns
            or column in self.derived
            or column in self.key
            or self.field_for(column) is not None
        )


def _renamed(**names: str) -> Mapping[str, str]:
    return MappingProxyType(names)


def _note(column: str = "note_id") -> Ref:
    return Ref(column, "local_notes", needed=True)


# In import order: every table after the tables its references point to.
LEGACY_TABLES: tuple[LegacyTable, ...] = (
    LegacyTable("local_notes", NOTE, ("id",), renames=_renamed(encrypted_metadata="metadata")),
    LegacyTable(
        "local_folders",
        FOLDER,
        ("id",),
        refs=(Ref("parent_id", "local_folders", needed=False, parent=True),),
        derived=("path",),
    ),
    LegacyTable(
        "note_folders",
        NOTE_FOLDER,
        ("note_id",),
        refs=(_note(), Ref("folder_id", "local_folders", needed=True)),
        renames=_renamed(added_at="created_at"),
    ),
    LegacyTable("note_tags", NOTE_TAG, ("note_id", "tag"), refs=(_note(),)),
    LegacyTable(
        "note_links",
        NOTE_LINK,
        ("source_id", "target_title", "target_id"),
        refs=(_note("source_id"), Ref("target_id", "local_notes", needed=False)),
    ),
    LegacyTable("note_reminders", REMINDER, ("id",), refs=(_note(),)),
    LegacyTable(
        "note_tasks",
        TASK,
        ("id",),
        refs=(
            _note(),
            Ref("reminder_id", "note_reminders", needed=False),
            Ref("parent_task_id", "note_tasks", needed=False, parent=True),
        ),
        derived=("content_hash",),
    ),
    LegacyTable("local_templates", TEMPLATE, ("id",)),
    LegacyTable("saved_searches", SAVED_SEARCH, ("id",)),
    LegacyTable(
        "pending_ops",
        None,
        ("id",),
        columns=("id", "entity_id", "kind", "payload", "created_at"),
        optional=True,
    ),
    LegacyTable(
        "fts_notes", None, ("id",), columns=("id", "title", "body", "folder_path"), optional=True
    ),
)

BY_LEGACY_NAME = {t.name: t for t in LEGACY_TABLES}

# Tables a version 11 file may hold that are no data of the app's.
IGNORED_TABLES = frozenset({"sqlite_sequence", "android_metadata"})
IGNORED_PREFIXES = ("sqlite_", "fts_notes_")
