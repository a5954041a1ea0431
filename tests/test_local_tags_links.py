"""Tags (normalising, renaming with merge, counts) and links (resolved late by title)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.errors import InvalidValue, NotFound
from duru.local import DeviceStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


def test_tags_are_stripped_case_kept_and_idempotent(store: DeviceStore) -> None:
    note = store.notes.create("n")
    first = store.tags.add(note["id"], "  Work ")
    assert store.tags.add(note["id"], "Work") == first
    store.tags.add(note["id"], "work")
    assert store.tags.list_for(note["id"]) == ["Work", "work"]
    for bad in ("", "   ", None, 3):
        with pytest.raises(InvalidValue):
            store.tags.add(note["id"], bad)  # type: ignore[arg-type]
    assert store.tags.remove(note["id"], "work") is True
    assert store.tags.remove(note["id"], "work") is False
    with pytest.raises(NotFound):
        store.tags.add("00000000-0000-4000-8000-000000000000", "x")


def test_rename_merges_without_duplicates_or_loss(store: DeviceStore) -> None:
    both = store.notes.create("both", tags=["old", "new", "other"])
    only_old = store.notes.create("only old", tags=["old"])
    only_new = store.notes.create("only new", tags=["new"])
    trashed = store.notes.create("trashed", tags=["old"])
    store.notes.trash(trashed["id"])
    assert store.tags.rename("old", "new") == 3
    assert store.tags.list_for(both["id"]) == ["new", "other"]
    assert store.tags.list_for(only_old["id"]) == ["new"]
    assert store.tags.list_for(only_new["id"]) == ["new"]
    assert store.tags.list_for(trashed["id"]) == ["new"]
    assert store.tags.counts() == {"new": 3, "other": 1}
    dupes = store.db.scalar(
        "SELECT count(*) FROM (SELECT 1 FROM note_tags GROUP BY note_id, tag HAVING count(*) > 1)"
    )
    assert dupes == 0
    assert store.tags.rename("missing", "new") == 0
    assert store.tags.rename("new", " new ") == 0


def test_counts_and_notes_with_see_only_live_notes(store: DeviceStore) -> None:
    a = store.notes.create("a", tags=["x", "y"])
    store.notes.create("b", tags=["x"])
    c = store.notes.create("c", tags=["x"])
    store.notes.trash(c["id"])
    assert store.tags.counts() == {"x": 2, "y": 1}
    assert {n["title"] for n in store.tags.notes_with("x")} == {"a", "b"}
    assert store.tags.set_for(a["id"], ["z"]) == ["z"]
    assert store.tags.counts() == {"x": 1, "z": 1}


def test_a_link_to_a_missing_title_resolves_when_the_note_appears(store: DeviceStore) -> None:
    src = store.notes.create("Source")
    link = store.links.add(src["id"], "Someday")
    assert link["target_id"] is None
    assert store.links.add(src["id"], "Someday") == link
    assert [lk["id"] for lk in store.links.unresolved()] == [link["id"]]
    target = store.notes.create("Someday")
    assert store.links.get(link["id"])["target_id"] == target["id"]
    assert [lk["id"] for lk in store.links.backlinks(target["id"])] == [link["id"]]
    assert store.links.unresolved() == []


def test_retitling_and_restoring_resolve_waiting_links(store: DeviceStore) -> None:
    src = store.notes.create("Source")
    by_edit = store.links.add(src["id"], "Later")
    by_restore = store.links.add(src["id"], "Back")
    other = store.notes.create("Draft")
    store.notes.edit(other["id"], title="Later")
    assert store.links.get(by_edit["id"])["target_id"] == other["id"]

    back = store.notes.create("Back")
    store.notes.trash(back["id"])
    store.notes.purge(back["id"])  # the link waits again
    assert store.links.get(by_restore["id"])["target_id"] is None
    again = store.notes.create("Elsewhere")
    store.notes.trash(again["id"])
    store.db.conn.execute("UPDATE notes SET title = 'Back' WHERE id = ?", (again["id"],))
    store.notes.restore(again["id"])
    assert store.links.get(by_restore["id"])["target_id"] == again["id"]


def test_links_resolve_only_to_live_notes_and_purge_repoints(store: DeviceStore) -> None:
    src = store.notes.create("Source")
    first = store.notes.create("Twin")
    second = store.notes.create("Twin")
    link = store.links.add(src["id"], "Twin")
    assert link["target_id"] == first["id"]  # the oldest note of that title
    store.notes.purge(first["id"], force=True)
    assert store.links.get(link["id"])["target_id"] == second["id"]
    store.notes.trash(second["id"])
    late = store.links.add(store.notes.create("S2")["id"], "Twin")
    assert late["target_id"] is None
    assert [lk["target_title"] for lk in store.links.outgoing(src["id"])] == ["Twin"]
    store.links.remove(link["id"])
    assert store.links.outgoing(src["id"]) == []
    with pytest.raises(InvalidValue):
        store.links.add(src["id"], "  ")
