"""Notes: create, edit, pin, trash, restore, purge, the recent list and its paging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.errors import ConstraintViolation, InvalidValue, NotFound
from duru.local import DeviceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


def tick() -> None:
    """Let the millisecond clock move, so updated_at orders what happened in order."""
    time.sleep(0.002)


def titles(rows: list[dict]) -> list[str]:
    return [r["title"] for r in rows]


def test_create_returns_the_stored_row(store: DeviceStore) -> None:
    note = store.notes.create("Title", "Body", pinned=True, note_type="template")
    assert note == store.notes.get(note["id"])
    assert (note["is_pinned"], note["note_type"], note["deleted"], note["version"]) == (1, 1, 0, 0)
    assert "doc_id" not in note


def test_create_with_tags_normalises_and_dedupes(store: DeviceStore) -> None:
    note = store.notes.create("t", tags=[" Work", "Work ", "work"])
    assert store.tags.list_for(note["id"]) == ["Work", "work"]
    with pytest.raises(InvalidValue, match="list of tags"):
        store.notes.create("t", tags="work")


def test_bad_values_are_invalid_value(store: DeviceStore) -> None:
    with pytest.raises(InvalidValue, match="note_type"):
        store.notes.create("t", note_type="diary")
    with pytest.raises(InvalidValue, match="title"):
        store.notes.create(42)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.notes.get("00000000-0000-4000-8000-000000000000")
    assert store.notes.count() == 0


def test_edit_changes_only_what_is_given(store: DeviceStore) -> None:
    note = store.notes.create("Old", "keep")
    tick()
    edited = store.notes.edit(note["id"], title="New")
    assert (edited["title"], edited["body"]) == ("New", "keep")
    assert edited["updated_at"] > note["updated_at"]
    assert store.notes.get(note["id"]) == edited
    assert store.notes.edit(note["id"]) == edited


def test_pinned_first_then_most_recent(store: DeviceStore) -> None:
    for name in ("a", "b", "c", "d"):
        store.notes.create(name)
        tick()
    ids = {r["title"]: r["id"] for r in store.notes.list_recent()}
    store.notes.pin(ids["b"])
    tick()
    store.notes.edit(ids["a"], body="touched")
    assert titles(store.notes.list_recent()) == ["b", "a", "d", "c"]
    assert titles(store.notes.list_recent(2, offset=1)) == ["a", "d"]
    store.notes.unpin(ids["b"])
    assert titles(store.notes.list_recent())[0] == "b"  # unpinning is also the latest change


def test_keyset_pages_cover_every_live_note_once_even_with_ties(store: DeviceStore) -> None:
    with store.db.transaction():
        for i in range(23):
            store.notes.create(f"n{i}", pinned=i % 5 == 0)
    # Many notes share an updated_at millisecond; the cursor still splits them right.
    store.db.conn.execute("UPDATE notes SET updated_at = 1000 + doc_id / 4")
    want = titles(store.notes.list_recent(100))
    got, cursor, pages = [], None, 0
    while True:
        page = store.notes.recent_page(4, cursor)
        got += titles(page.rows)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert got == want and len(got) == 23 and pages == 6
    with pytest.raises(InvalidValue, match="cursor"):
        store.notes.recent_page(4, "not-a-cursor")


def test_trash_restore_and_purge(store: DeviceStore) -> None:
    keep = store.notes.create("keep")
    gone = store.notes.create("gone", tags=["x"])
    tick()
    store.notes.trash(gone["id"])
    assert titles(store.notes.list_recent()) == ["keep"]
    assert titles(store.notes.list_trash()) == ["gone"]
    assert (store.notes.count(), store.notes.count(trashed=True)) == (1, 1)
    assert store.tags.counts() == {}
    with pytest.raises(NotFound, match="trash"):
        store.notes.pin(gone["id"])
    with pytest.raises(ConstraintViolation, match="not in the trash"):
        store.notes.purge(keep["id"])

    store.notes.restore(gone["id"])
    assert store.notes.count() == 2 and store.tags.counts() == {"x": 1}
    store.notes.trash(gone["id"])
    store.notes.purge(gone["id"])
    with pytest.raises(NotFound):
        store.notes.get(gone["id"])
    assert store.db.scalar("SELECT count(*) FROM note_tags") == 0
    store.notes.purge(keep["id"], force=True)
    assert store.notes.count() == 0


def test_empty_trash_purges_only_the_trash(store: DeviceStore) -> None:
    live = store.notes.create("live")
    for i in range(3):
        store.notes.trash(store.notes.create(f"t{i}")["id"])
    assert store.notes.empty_trash() == 3
    assert titles(store.notes.list_recent()) == ["live"]
    assert store.notes.list_trash() == [] and store.notes.get(live["id"])


def test_limits_are_checked(store: DeviceStore) -> None:
    for bad in (0, -1, True):
        with pytest.raises(InvalidValue, match="limit"):
            store.notes.list_recent(bad)
    with pytest.raises(InvalidValue, match="offset"):
        store.notes.list_trash(5, offset=-1)
