"""Folders: a tree of any depth, and the one folder each note may be filed in.

Folders with ``deleted`` set (as an import may bring them) are left out of
``children`` and ``tree``. :meth:`Folders.delete` removes a folder for good
after re-homing its notes and sub-folders, each change with its outbox row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from duru.errors import ConstraintViolation, InvalidValue, NotFound
from duru.local.db import Database
from duru.local.rows import allow_only, change, columns, live_note, require_live_note, select
from duru.model import FOLDER, NOTE, NOTE_FOLDER, Row

NotesTo = Literal["parent", "trash"]
_EXTRA = frozenset({"color", "icon", "description"})

# Depth-first: the queue pops the deepest row first, siblings by sort_order, name, id.
_TREE_SQL = """
WITH RECURSIVE t(depth, path, {cols}) AS (
    SELECT 0, json_array(f.name), {fcols} FROM folders f WHERE {start} AND f.deleted = 0
    UNION ALL
    SELECT t.depth + 1, json_insert(t.path, '$[#]', f.name), {fcols}
    FROM folders f JOIN t ON f.parent_id = t.id
    WHERE f.deleted = 0 AND f.id IS NOT :root
    ORDER BY 1 DESC, sort_order, name, id
)
SELECT * FROM t
"""

# The chain from the top down to a folder; bounded by the table size so a corrupt cycle ends.
_UP_SQL = """
WITH RECURSIVE up(depth, {cols}) AS (
    SELECT 0, {fcols} FROM folders f WHERE f.id = ?
    UNION ALL
    SELECT up.depth + 1, {fcols} FROM folders f JOIN up ON f.id = up.parent_id
    WHERE up.depth < (SELECT count(*) FROM folders)
)
SELECT {cols} FROM up ORDER BY depth DESC
"""

_DESCENDANTS_SQL = """
WITH RECURSIVE d(id) AS (
    SELECT ? UNION SELECT f.id FROM folders f JOIN d ON f.parent_id = d.id
)
"""


@dataclass(frozen=True)
class FolderNode:
    """One folder in :meth:`Folders.tree`: its row, depth (0 at the top) and path of names."""

    folder: Row
    depth: int
    path: tuple[str, ...]


def check_name(name: object) -> str:
    """A folder name with surrounding whitespace stripped; InvalidValue when blank."""
    if not isinstance(name, str):
        raise InvalidValue(f"a folder name must be text, not {type(name).__name__}")
    if not name.strip():
        raise InvalidValue("a folder name may not be blank")
    return name.strip()


def file_note(db: Database, note_id: str, folder_id: str) -> Row:
    """File a live note in a folder, replacing the folder it was in (one per note)."""
    with db.transaction():
        require_live_note(db, note_id)
        _live_folder(db, folder_id)
        if db.find(NOTE_FOLDER, note_id) is None:
            return db.insert(NOTE_FOLDER, {"note_id": note_id, "folder_id": folder_id})
        return change(db, NOTE_FOLDER, note_id, {"folder_id": folder_id})


def _live_folder(db: Database, folder_id: str) -> Row:
    folder = db.get(FOLDER, folder_id)
    if folder["deleted"]:
        raise NotFound(f"folder {folder_id} is deleted")
    return folder


class Folders:
    """The folder tree and note filing. Multi-row changes run in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        parent_id: str | None = None,
        *,
        sort_order: int | None = None,
        **fields: object,
    ) -> Row:
        """A new folder under ``parent_id`` (None: at the top), last among its siblings.

        ``fields`` may set ``color``, ``icon`` and ``description``.
        Raises NotFound for an unknown parent, InvalidValue for a blank name.
        """
        allow_only("a new folder", fields, _EXTRA)
        values = {"name": check_name(name), "parent_id": parent_id, **fields}
        with self.db.transaction():
            if parent_id is not None:
                _live_folder(self.db, parent_id)
            if sort_order is None:
                sort_order = self._next_sort_order(parent_id)
            return self.db.insert(FOLDER, {**values, "sort_order": sort_order})

    def get(self, folder_id: str) -> Row:
        """The folder ``folder_id``; NotFound when there is none."""
        return self.db.get(FOLDER, folder_id)

    def rename(self, folder_id: str, name: str) -> Row:
        """Give a folder a new name; InvalidValue when blank."""
        return change(self.db, FOLDER, folder_id, {"name": check_name(name)})

    def move(self, folder_id: str, new_parent_id: str | None) -> Row:
        """Put a folder (with its sub-tree) under ``new_parent_id``, or at the top.

        Raises ConstraintViolation, naming the cycle, when the new parent is the
        folder itself or inside it; NotFound for an unknown folder or parent.
        """
        with self.db.transaction():
            folder = self.db.get(FOLDER, folder_id)
            if folder["parent_id"] == new_parent_id:
                return folder
            if new_parent_id is not None:
                _live_folder(self.db, new_parent_id)
                self._refuse_cycle(folder, new_parent_id)
            order = self._next_sort_order(new_parent_id)
            return change(
                self.db, FOLDER, folder_id, {"parent_id": new_parent_id, "sort_order": order}
            )

    def _refuse_cycle(self, folder: Row, new_parent_id: str) -> None:
        chain = self.path(new_parent_id)
        ids = [f["id"] for f in chain]
        if folder["id"] not in ids:
            return
        loop = [f["name"] for f in chain[ids.index(folder["id"]) :]] + [folder["name"]]
        raise ConstraintViolation(
            f"moving folder {folder['name']!r} into {chain[-1]['name']!r} would make a cycle: "
            + " > ".join(loop)
        )

    def _next_sort_order(self, parent_id: str | None) -> int:
        # Served by ix_folders_parent_id_sort_order (max of the last index entry).
        last = self.db.scalar(
            "SELECT max(sort_order) FROM folders WHERE parent_id IS ?", (parent_id,)
        )
        return 0 if last is None else int(last) + 1

    def children(self, parent_id: str | None = None) -> list[Row]:
        """The folders directly under ``parent_id`` (None: the top level), in order."""
        if parent_id is not None:
            self.db.get(FOLDER, parent_id)
        return select(
            self.db,
            FOLDER,
            "WHERE x.parent_id IS ? AND x.deleted = 0 ORDER BY x.sort_order, x.name, x.id",
            (parent_id,),
        )

    def tree(self, root_id: str | None = None) -> list[FolderNode]:
        """Every folder (or ``root_id`` and everything under it) depth-first, in order.

        One recursive query; each node carries its depth and its path of names,
        both counted from where the walk starts (``root_id`` is depth 0).
        """
        start = "f.parent_id IS NULL" if root_id is None else "f.id = :root"
        cols = columns(FOLDER)
        sql = _TREE_SQL.format(cols=cols, fcols=columns(FOLDER, "f"), start=start)
        nodes = []
        for row in self.db.rows(sql, {"root": root_id}):
            depth, path = row.pop("depth"), row.pop("path")
            nodes.append(FolderNode(row, int(depth), tuple(json.loads(path))))
        if root_id is not None and not nodes:
            _live_folder(self.db, root_id)
        return nodes

    def path(self, folder_id: str) -> list[Row]:
        """The folders from the top down to ``folder_id`` itself; NotFound if unknown."""
        sql = _UP_SQL.format(cols=columns(FOLDER), fcols=columns(FOLDER, "f"))
        chain = self.db.rows(sql, (folder_id,))
        if not chain:
            raise NotFound(f"no folder with id {folder_id}")
        return chain

    def delete(self, folder_id: str, *, notes_to: NotesTo = "parent") -> dict[str, int]:
        """Delete a folder for good, in one transaction.

        Its notes go to its parent folder (unfiled when it is at the top) with
        ``notes_to="parent"``, or to the trash (unfiled) with ``"trash"``; its
        sub-folders move up to its parent. Returns counts of what moved.
        """
        if notes_to not in ("parent", "trash"):
            raise InvalidValue(f"notes_to must be 'parent' or 'trash', not {notes_to!r}")
        with self.db.transaction():
            folder = self.db.get(FOLDER, folder_id)
            parent = folder["parent_id"]
            notes = self._rehome_notes(folder_id, parent, notes_to)
            subfolders = self._children_all(folder_id)
            for sub in subfolders:
                change(self.db, FOLDER, sub["id"], {"parent_id": parent})
            self.db.delete(FOLDER, folder_id)
        return {"notes": notes, "folders": len(subfolders)}

    def _rehome_notes(self, folder_id: str, parent: str | None, notes_to: NotesTo) -> int:
        filed = self.db.conn.execute(
            "SELECT note_id FROM note_folders WHERE folder_id = ? ORDER BY note_id", (folder_id,)
        ).fetchall()
        for (note_id,) in filed:
            if notes_to == "parent" and parent is not None:
                change(self.db, NOTE_FOLDER, note_id, {"folder_id": parent})
                continue
            if notes_to == "trash":
                change(self.db, NOTE, note_id, {"deleted": True})
            self.db.delete(NOTE_FOLDER, note_id)
        return len(filed)

    def _children_all(self, parent_id: str) -> list[Row]:
        # Deleted ones too: the parent must go, and RESTRICT would stop it.
        return select(
            self.db, FOLDER, "WHERE x.parent_id = ? ORDER BY x.sort_order, x.id", (parent_id,)
        )

    # -- filing --------------------------------------------------------------

    def file_note(self, note_id: str, folder_id: str) -> Row:
        """File a live note in a folder; refiling replaces its folder (one per note)."""
        return file_note(self.db, note_id, folder_id)

    def unfile(self, note_id: str) -> bool:
        """Take a note out of its folder; False (and no write) when it was in none."""
        with self.db.transaction():
            if self.db.find(NOTE_FOLDER, note_id) is None:
                return False
            self.db.delete(NOTE_FOLDER, note_id)
            return True

    def folder_of(self, note_id: str) -> Row | None:
        """The folder a note is filed in, or None; NotFound for an unknown note."""
        self.db.get(NOTE, note_id)
        filed = self.db.find(NOTE_FOLDER, note_id)
        return None if filed is None else self.db.get(FOLDER, filed["folder_id"])

    def notes_in(self, folder_id: str, *, recursive: bool = False) -> list[Row]:
        """Live notes filed in the folder (and with ``recursive``, in any folder below).

        Most recently updated first; served by ix_note_folders_folder_id_note_id.
        """
        _live_folder(self.db, folder_id)
        prefix, scope = ("", "nf.folder_id = ?")
        if recursive:
            prefix, scope = _DESCENDANTS_SQL, "nf.folder_id IN (SELECT id FROM d)"
        sql = (
            f"{prefix} SELECT {columns(NOTE, 'n')} FROM note_folders nf"
            f" JOIN notes n ON n.id = nf.note_id WHERE {scope} AND {live_note('n')}"
            " ORDER BY n.updated_at DESC, n.doc_id DESC"
        )
        return self.db.rows(sql, (folder_id,))
