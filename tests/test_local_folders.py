"""Folders: trees of any depth, moves without cycles, deletes that lose no note."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.errors import ConstraintViolation, InvalidValue, NotFound
from duru.local import DeviceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


def chain(store: DeviceStore, depth: int, prefix: str = "L") -> list[str]:
    """Folders L0 > L1 > ... nested ``depth`` deep; returns their ids, top first."""
    ids: list[str] = []
    for i in range(depth):
        ids.append(store.folders.create(f"{prefix}{i}", ids[-1] if ids else None)["id"])
    return ids


def test_a_ten_deep_tree_keeps_depth_and_path(store: DeviceStore) -> None:
    ids = chain(store, 10)
    side = store.folders.create("side", ids[3])
    nodes = store.folders.tree()
    assert [n.folder["name"] for n in nodes] == [*(f"L{i}" for i in range(10)), "side"]
    assert [n.depth for n in nodes] == [*range(10), 4]
    assert nodes[9].path == tuple(f"L{i}" for i in range(10))
    assert nodes[-1].path == ("L0", "L1", "L2", "L3", "side")
    assert [f["name"] for f in store.folders.path(ids[9])] == [f"L{i}" for i in range(10)]
    sub = store.folders.tree(ids[3])
    assert [(n.folder["name"], n.depth) for n in sub][:2] == [("L3", 0), ("L4", 1)]
    assert store.folders.children(ids[3]) == [
        store.folders.get(ids[4]),
        store.folders.get(side["id"]),
    ]


def test_tree_is_depth_first_with_siblings_in_order(store: DeviceStore) -> None:
    a = store.folders.create("a")
    b = store.folders.create("b")
    store.folders.create("a2", a["id"])
    store.folders.create("a1", a["id"], sort_order=-1)
    store.folders.create("b1", b["id"])
    assert [n.folder["name"] for n in store.folders.tree()] == ["a", "a1", "a2", "b", "b1"]


def test_move_refuses_every_cycle_and_names_it(store: DeviceStore) -> None:
    ids = chain(store, 8)
    for target in ids:
        with pytest.raises(ConstraintViolation, match="cycle: L0 > .*L0$"):
            store.folders.move(ids[0], target)
    with pytest.raises(ConstraintViolation, match="cycle: L5 > L6 > L7 > L5"):
        store.folders.move(ids[5], ids[7])
    moved = store.folders.move(ids[5], None)
    assert moved["parent_id"] is None
    assert [n.depth for n in store.folders.tree(ids[5])] == [0, 1, 2]
    store.folders.move(ids[0], ids[7])  # legal now: L0's subtree ends at L4
    assert [f["name"] for f in store.folders.path(ids[4])] == [
        "L5",
        "L6",
        "L7",
        "L0",
        "L1",
        "L2",
        "L3",
        "L4",
    ]


def test_move_to_unknown_parent_and_blank_names(store: DeviceStore) -> None:
    f = store.folders.create("f")
    with pytest.raises(NotFound):
        store.folders.move(f["id"], "00000000-0000-4000-8000-000000000000")
    with pytest.raises(InvalidValue, match="blank"):
        store.folders.create("  ")
    with pytest.raises(InvalidValue, match="blank"):
        store.folders.rename(f["id"], "")
    assert store.folders.rename(f["id"], " g ")["name"] == "g"


def test_delete_moves_notes_to_parent_and_children_up(store: DeviceStore) -> None:
    top, mid, low = chain(store, 3)
    n1 = store.notes.create("in mid", folder_id=mid)
    n2 = store.notes.create("in low", folder_id=low)
    report = store.folders.delete(mid)
    assert report == {"notes": 1, "folders": 1}
    assert store.folders.get(low)["parent_id"] == top
    assert store.folders.folder_of(n1["id"])["id"] == top
    assert store.folders.folder_of(n2["id"])["id"] == low
    with pytest.raises(NotFound):
        store.folders.get(mid)
    assert [n.folder["name"] for n in store.folders.tree()] == ["L0", "L2"]


def test_delete_at_the_top_unfiles_and_trash_mode_trashes(store: DeviceStore) -> None:
    top, mid = chain(store, 2)
    n1 = store.notes.create("at top", folder_id=top)
    n2 = store.notes.create("in mid", folder_id=mid)
    store.folders.delete(top)
    assert store.folders.folder_of(n1["id"]) is None and not store.notes.get(n1["id"])["deleted"]
    assert store.folders.get(mid)["parent_id"] is None
    store.folders.delete(mid, notes_to="trash")
    assert store.notes.get(n2["id"])["deleted"] == 1
    assert store.folders.folder_of(n2["id"]) is None
    assert store.notes.count() == 1 and store.notes.count(trashed=True) == 1


def test_filing_is_one_folder_per_note(store: DeviceStore) -> None:
    a, b = store.folders.create("a"), store.folders.create("b")
    note = store.notes.create("n", folder_id=a["id"])
    store.folders.file_note(note["id"], b["id"])
    assert store.db.scalar("SELECT count(*) FROM note_folders") == 1
    assert store.folders.notes_in(a["id"]) == []
    assert [n["id"] for n in store.folders.notes_in(b["id"])] == [note["id"]]
    assert store.folders.unfile(note["id"]) is True
    assert store.folders.unfile(note["id"]) is False


def test_notes_in_recursive_reaches_every_level(store: DeviceStore) -> None:
    ids = chain(store, 9)
    for i, fid in enumerate(ids):
        store.notes.create(f"n{i}", folder_id=fid)
    trashed = store.notes.create("trashed", folder_id=ids[8])
    store.notes.trash(trashed["id"])
    assert len(store.folders.notes_in(ids[0], recursive=True)) == 9
    assert len(store.folders.notes_in(ids[6], recursive=True)) == 3
    assert len(store.folders.notes_in(ids[6])) == 1
