"""Tasks of notes, with subtasks of any depth, status, priority and due dates.

``position`` orders a task among its siblings (same note, same parent).
Giving a position inserts there and renumbers the siblings 0..n-1, writing
only the rows whose position actually changed. Deleting is soft
(``deleted`` = 1) and takes the whole subtree along.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duru.errors import ConstraintViolation, InvalidValue, NotFound
from duru.local.db import Database
from duru.local.rows import (
    allow_only,
    change,
    check_limit,
    columns,
    live_note,
    require_live_note,
    require_note,
    select,
)
from duru.local.schema import where_sql
from duru.model import TASK, TASK_STATUS, Row, now_ms, to_local

# The partial index's own predicate, rendered from the model, so SQLite can use it.
_OPEN = where_sql(TASK, next(ix for ix in TASK.indexes if ix.columns[0] == "due_date").where, "x.")
_NOTE_LIVE = f"EXISTS (SELECT 1 FROM notes n WHERE n.id = x.note_id AND {live_note('n')})"
_COMPLETED = TASK_STATUS.code("completed")
_EDITABLE = frozenset(
    {"content", "completed_by", "reminder_id", "labels", "notes"}
    | {"estimated_minutes", "actual_minutes"}
)

# Depth-first: the queue pops the deepest row first, siblings by position.
_TREE_SQL = """
WITH RECURSIVE t(depth, {cols}) AS (
    SELECT 0, {tcols} FROM tasks c WHERE {start} AND c.deleted = 0
    UNION ALL
    SELECT t.depth + 1, {tcols} FROM tasks c JOIN t ON c.parent_task_id = t.id
    WHERE c.deleted = 0 AND c.id IS NOT :root
    ORDER BY 1 DESC, position, created_at, id
)
SELECT * FROM t
"""

# A task at the first level of its note's list: no parent, or a deleted one.
_SHOWN_AT_TOP = (
    "(c.parent_task_id IS NULL OR EXISTS"
    " (SELECT 1 FROM tasks p WHERE p.id = c.parent_task_id AND p.deleted <> 0))"
)

_SUBTREE_IDS_SQL = """
WITH RECURSIVE d(id) AS (
    SELECT ? UNION SELECT c.id FROM tasks c JOIN d ON c.parent_task_id = d.id
)
SELECT id FROM d
"""


@dataclass(frozen=True)
class TaskNode:
    """One task in tree order: its row and its depth (0 for the first level shown)."""

    task: Row
    depth: int


def check_content(content: object) -> str:
    """``content`` unchanged; InvalidValue when it is not text or is blank."""
    if not isinstance(content, str):
        raise InvalidValue(f"task content must be text, not {type(content).__name__}")
    if not content.strip():
        raise InvalidValue("task content may not be blank")
    return content


class Tasks:
    """Tasks and subtasks. Multi-row changes run in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        note_id: str,
        content: str,
        *,
        parent_task_id: str | None = None,
        priority: str | int = "medium",
        due_date: int | datetime | None = None,
        position: int | None = None,
        **fields: object,
    ) -> Row:
        """A new task on a live note, under ``parent_task_id`` when given.

        ``position`` None appends; a number inserts at that place among the
        siblings. Raises NotFound for an unknown note or parent, and
        ConstraintViolation for a parent on another note or in the trash.
        """
        allow_only("a new task", fields, _EDITABLE - {"content"})
        values = {
            "note_id": note_id,
            "content": check_content(content),
            "parent_task_id": parent_task_id,
            "priority": priority,
            "due_date": due_date,
            **fields,
        }
        with self.db.transaction():
            require_live_note(self.db, note_id)
            if parent_task_id is not None:
                self._check_parent(note_id, parent_task_id)
            place = self._make_room(note_id, parent_task_id, None, position)
            return self.db.insert(TASK, {**values, "position": place})

    def get(self, task_id: str) -> Row:
        """The task ``task_id``; NotFound when there is none."""
        return self.db.get(TASK, task_id)

    def edit(self, task_id: str, **changes: object) -> Row:
        """Change content, notes, labels, minutes, completed_by or reminder_id.

        Structure and state have their own calls (move, set_status, ...).
        """
        allow_only("a task edit (use move, set_status, ...)", changes, _EDITABLE)
        if "content" in changes:
            check_content(changes["content"])
        return change(self.db, TASK, self._live(task_id)["id"], changes)

    def set_status(self, task_id: str, status: str | int) -> Row:
        """Set the status; completing stamps completed_at, any other status clears it."""
        stored = to_local(TASK.field("status"), status)
        with self.db.transaction():
            current = self._live(task_id)
            if stored == current["status"]:
                return current
            done = now_ms() if stored == _COMPLETED else None
            return change(self.db, TASK, task_id, {"status": status, "completed_at": done})

    def set_priority(self, task_id: str, priority: str | int) -> Row:
        """Set the priority (low, medium, high, urgent)."""
        return change(self.db, TASK, self._live(task_id)["id"], {"priority": priority})

    def set_due(self, task_id: str, due_date: int | datetime | None) -> Row:
        """Set or (with None) clear the due date."""
        return change(self.db, TASK, self._live(task_id)["id"], {"due_date": due_date})

    def move(self, task_id: str, parent_task_id: str | None, position: int | None = None) -> Row:
        """Put a task (with its subtasks) under ``parent_task_id`` (None: top level).

        ``position`` None appends. Raises ConstraintViolation when the parent
        is on another note, in the trash, or inside the task's own subtree.
        """
        with self.db.transaction():
            task = self._live(task_id)
            same_parent = task["parent_task_id"] == parent_task_id
            if same_parent and position is None:
                return task
            if parent_task_id is not None and not same_parent:
                self._check_parent(task["note_id"], parent_task_id)
                self._refuse_cycle(task, parent_task_id)
            place = self._make_room(task["note_id"], parent_task_id, task_id, position)
            return change(
                self.db, TASK, task_id, {"parent_task_id": parent_task_id, "position": place}
            )

    def reorder(self, task_id: str, position: int) -> Row:
        """Move a task to ``position`` among its siblings."""
        return self.move(task_id, self._live(task_id)["parent_task_id"], position)

    def delete(self, task_id: str) -> int:
        """Soft-delete a task and its whole subtree; returns how many rows changed."""
        with self.db.transaction():
            self.db.get(TASK, task_id)
            ids = [r[0] for r in self.db.conn.execute(_SUBTREE_IDS_SQL, (task_id,))]
            changed = 0
            for tid in sorted(ids):
                before = self.db.get(TASK, tid)
                if not before["deleted"]:
                    change(self.db, TASK, tid, {"deleted": True})
                    changed += 1
        return changed

    def list_for_note(self, note_id: str) -> list[TaskNode]:
        """The note's live tasks in tree order (each parent before its subtasks).

        A live task under a deleted one shows at the first level, with its subtasks.
        Here a delete takes the subtree along, but a subtask added or moved under the
        task on another device before that device saw the delete stays live after sync:
        it is kept, so it is shown.
        """
        require_note(self.db, note_id)
        return self._tree(f"c.note_id = :note AND {_SHOWN_AT_TOP}", {"note": note_id})

    def subtree(self, task_id: str) -> list[TaskNode]:
        """The task and every live task below it, in tree order (one recursive query)."""
        self._live(task_id)
        return self._tree("c.id = :root", {"root": task_id})

    def open_tasks(self, limit: int = 50) -> list[Row]:
        """Open and in-progress tasks of live notes: due soonest first, undated last.

        Two walks of the partial index ix_tasks_due_date_priority, each
        stopping at ``limit``. Tasks due at the same instant come most urgent
        first; only such a tie group is ever sorted, never the table.
        """
        check_limit(limit)
        dated = select(
            self.db,
            TASK,
            f"WHERE {_OPEN} AND x.due_date IS NOT NULL AND {_NOTE_LIVE}"
            " ORDER BY x.due_date, x.priority DESC LIMIT ?",
            (limit,),
        )
        if len(dated) == limit:
            return dated
        undated = select(
            self.db,
            TASK,
            f"WHERE {_OPEN} AND x.due_date IS NULL AND {_NOTE_LIVE}"
            " ORDER BY x.priority DESC LIMIT ?",
            (limit - len(dated),),
        )
        return dated + undated

    # -- helpers -------------------------------------------------------------

    def _live(self, task_id: str) -> Row:
        task = self.db.get(TASK, task_id)
        if task["deleted"]:
            raise NotFound(f"task {task_id} is deleted")
        return task

    def _check_parent(self, note_id: str, parent_task_id: str) -> None:
        parent = self.db.get(TASK, parent_task_id)
        if parent["note_id"] != note_id:
            raise ConstraintViolation(
                f"parent task {parent_task_id} belongs to note {parent['note_id']}, not {note_id}"
            )
        if parent["deleted"]:
            raise ConstraintViolation(f"parent task {parent_task_id} is deleted")

    def _refuse_cycle(self, task: Row, parent_task_id: str) -> None:
        below = {r[0] for r in self.db.conn.execute(_SUBTREE_IDS_SQL, (task["id"],))}
        if parent_task_id in below:
            parent = self.db.get(TASK, parent_task_id)
            raise ConstraintViolation(
                f"task {task['content']!r} cannot go under {parent['content']!r}:"
                " it is the task itself or one of its subtasks (a cycle)"
            )

    def _siblings(self, note_id: str, parent_task_id: str | None) -> list[Row]:
        if parent_task_id is None:
            where, params = "x.note_id = ? AND x.parent_task_id IS NULL", (note_id,)
        else:
            where, params = "x.parent_task_id = ?", (parent_task_id,)
        return select(
            self.db,
            TASK,
            f"WHERE {where} AND x.deleted = 0 ORDER BY x.position, x.created_at, x.id",
            params,
        )

    def _make_room(
        self, note_id: str, parent_task_id: str | None, task_id: str | None, position: int | None
    ) -> int:
        """The position for ``task_id`` among its new siblings, renumbering them if needed."""
        siblings = [s for s in self._siblings(note_id, parent_task_id) if s["id"] != task_id]
        if position is None:
            return siblings[-1]["position"] + 1 if siblings else 0
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise InvalidValue(f"position must be a non-negative integer, not {position!r}")
        place = min(position, len(siblings))
        for i, sib in enumerate(siblings):
            change(self.db, TASK, sib["id"], {"position": i if i < place else i + 1})
        return place

    def _tree(self, start: str, params: dict[str, object]) -> list[TaskNode]:
        sql = _TREE_SQL.format(cols=columns(TASK), tcols=columns(TASK, "c"), start=start)
        nodes = []
        for row in self.db.rows(sql, {"root": None, **params}):
            depth = int(row.pop("depth"))
            nodes.append(TaskNode(row, depth))
        return nodes
