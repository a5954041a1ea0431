"""Tasks: subtasks of any depth, positions, status stamps, soft delete, open tasks order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from duru.errors import ConstraintViolation, InvalidValue, NotFound
from duru.local import DeviceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


@pytest.fixture
def note_id(store: DeviceStore) -> str:
    return str(store.notes.create("tasks")["id"])


def contents(nodes: list) -> list[tuple[str, int]]:
    return [(n.task["content"], n.depth) for n in nodes]


def nest(store: DeviceStore, note_id: str, depth: int) -> list[str]:
    ids: list[str] = []
    for i in range(depth):
        parent = ids[-1] if ids else None
        ids.append(store.tasks.create(note_id, f"d{i}", parent_task_id=parent)["id"])
    return ids


def test_subtasks_five_deep_come_back_in_tree_order(store: DeviceStore, note_id: str) -> None:
    ids = nest(store, note_id, 5)
    store.tasks.create(note_id, "d1b", parent_task_id=ids[0])
    store.tasks.create(note_id, "top2")
    assert contents(store.tasks.list_for_note(note_id)) == [
        ("d0", 0),
        ("d1", 1),
        ("d2", 2),
        ("d3", 3),
        ("d4", 4),
        ("d1b", 1),
        ("top2", 0),
    ]
    assert contents(store.tasks.subtree(ids[2])) == [("d2", 0), ("d3", 1), ("d4", 2)]


def test_positions_append_insert_and_reorder(store: DeviceStore, note_id: str) -> None:
    for name in ("a", "b", "c"):
        store.tasks.create(note_id, name)
    first = store.tasks.create(note_id, "first", position=0)
    assert [n.task["content"] for n in store.tasks.list_for_note(note_id)] == [
        "first",
        "a",
        "b",
        "c",
    ]
    store.tasks.reorder(first["id"], 99)  # past the end: last
    rows = [n.task for n in store.tasks.list_for_note(note_id)]
    assert [(r["content"], r["position"]) for r in rows] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("first", 3),
    ]
    with pytest.raises(InvalidValue, match="position"):
        store.tasks.reorder(first["id"], -1)


def test_parent_must_be_on_the_same_note_and_moves_cannot_loop(
    store: DeviceStore, note_id: str
) -> None:
    ids = nest(store, note_id, 5)
    other = store.notes.create("other")
    foreign = store.tasks.create(other["id"], "foreign")
    with pytest.raises(ConstraintViolation, match="belongs to note"):
        store.tasks.create(note_id, "x", parent_task_id=foreign["id"])
    with pytest.raises(ConstraintViolation, match="belongs to note"):
        store.tasks.move(ids[1], foreign["id"])
    for below in ids[1:]:
        with pytest.raises(ConstraintViolation, match="cycle"):
            store.tasks.move(ids[1], below)
    store.tasks.move(ids[3], None)
    assert contents(store.tasks.list_for_note(note_id)) == [
        ("d0", 0),
        ("d1", 1),
        ("d2", 2),
        ("d3", 0),
        ("d4", 1),
    ]
    store.tasks.move(ids[0], ids[4])  # legal now: d0's subtree is d0..d2
    assert [n.depth for n in store.tasks.subtree(ids[3])] == [0, 1, 2, 3, 4]


def test_status_stamps_and_clears_completed_at(store: DeviceStore, note_id: str) -> None:
    task = store.tasks.create(note_id, "do it")
    done = store.tasks.set_status(task["id"], "completed")
    assert done["status"] == 2 and isinstance(done["completed_at"], int)
    assert store.tasks.set_status(task["id"], "completed") == done
    reopened = store.tasks.set_status(task["id"], "in_progress")
    assert (reopened["status"], reopened["completed_at"]) == (1, None)
    with pytest.raises(InvalidValue, match="task_status"):
        store.tasks.set_status(task["id"], "someday")
    due = datetime(2030, 1, 2, tzinfo=UTC)
    assert store.tasks.set_due(task["id"], due)["due_date"] == 1893542400000
    assert store.tasks.set_priority(task["id"], "urgent")["priority"] == 3
    assert store.tasks.edit(task["id"], content="done it", labels=["a"])["labels"] == '["a"]'
    with pytest.raises(InvalidValue, match="position"):
        store.tasks.edit(task["id"], position=3)
    with pytest.raises(InvalidValue, match="blank"):
        store.tasks.edit(task["id"], content=" ")


def test_delete_is_soft_and_takes_the_subtree(store: DeviceStore, note_id: str) -> None:
    ids = nest(store, note_id, 5)
    keep = store.tasks.create(note_id, "keep")
    assert store.tasks.delete(ids[2]) == 3
    assert [n.task["content"] for n in store.tasks.list_for_note(note_id)] == ["d0", "d1", "keep"]
    assert store.db.scalar("SELECT count(*) FROM tasks WHERE deleted = 1") == 3
    with pytest.raises(NotFound, match="deleted"):
        store.tasks.set_status(ids[3], "completed")
    with pytest.raises(ConstraintViolation, match="deleted"):
        store.tasks.create(note_id, "x", parent_task_id=ids[2])
    assert store.tasks.delete(keep["id"]) == 1


def test_open_tasks_soonest_first_urgent_first_undated_last(
    store: DeviceStore, note_id: str
) -> None:
    t = store.tasks
    t.create(note_id, "undated low", priority="low")
    t.create(note_id, "undated urgent", priority="urgent")
    t.create(note_id, "day2 low", due_date=2_000, priority="low")
    t.create(note_id, "day1 medium", due_date=1_000)
    t.create(note_id, "day2 high", due_date=2_000, priority="high")
    done = t.create(note_id, "done", due_date=500)
    t.set_status(done["id"], "completed")
    t.delete(t.create(note_id, "deleted", due_date=400)["id"])
    working = t.create(note_id, "working", due_date=3_000)
    t.set_status(working["id"], "in_progress")
    trashed = store.notes.create("trashed")
    t.create(trashed["id"], "on trashed note", due_date=100)
    store.notes.trash(trashed["id"])
    expected = [
        "day1 medium",
        "day2 high",
        "day2 low",
        "working",
        "undated urgent",
        "undated low",
    ]
    assert [r["content"] for r in t.open_tasks()] == expected
    assert [r["content"] for r in t.open_tasks(3)] == expected[:3]
    assert [r["content"] for r in t.open_tasks(5)] == expected[:5]
