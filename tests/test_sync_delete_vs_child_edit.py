"""A row deleted on one device while another changed a row below it (a task of a note, a
tag, a filing into a folder): the change below survives, and the row above comes back
with it, as a delete loses to an edit of the row itself (issue "conflicts": "the edit
survives").

A sync pushes first, so a tag or a filing made under a dead row usually reaches the
server first, which asks for the row above to be written again. A task edited under a
purged note does not: its push loses (the task is a tombstone there) and waits, and the
pull that follows brought the note's tombstone, whose ON DELETE CASCADE took the task
with its new text, unseen (the first test failed so). The pull now keeps a row that has
unpushed changes below it, as it keeps a row edited itself.

Real devices, real ``duru serve`` over PostgreSQL, real crypto.
"""

from __future__ import annotations

from pathlib import Path

import test_sync
from test_sync import Server, snapshot, sync_all, two_devices

from duru import sync
from duru.local import DeviceStore
from duru.local.db import Database

home = test_sync.home
server = test_sync.server


def _revived(path: Path) -> list[str]:
    with Database.open(path, create=False) as db:
        return [
            r["entity"]
            for r in db.rows("SELECT entity FROM sync_conflicts WHERE status = 'revived'")
        ]


def test_a_task_edited_under_a_note_purged_elsewhere_survives(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("plan", body="the plan")
        task = s.tasks.create(note["id"], "call the venue")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    with DeviceStore.open(b) as s:
        s.tasks.edit(task["id"], content="call the venue before Friday, ask for room 2")
    sync.sync(a)
    sync.sync(b)  # pulls the purge while its task edit waits to be pushed
    with DeviceStore.open(b) as s:
        assert s.tasks.get(task["id"])["content"] == "call the venue before Friday, ask for room 2"
        assert s.notes.get(note["id"])["title"] == "plan"
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    with DeviceStore.open(a) as s:
        assert s.tasks.get(task["id"])["content"] == "call the venue before Friday, ask for room 2"
    assert "note" in _revived(b)


def test_a_tag_added_under_a_note_purged_elsewhere_survives(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("trip")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    with DeviceStore.open(b) as s:
        s.tags.add(note["id"], "travel")
    sync.sync(a)
    sync_all(b, a)
    assert snapshot(a) == snapshot(b)
    with DeviceStore.open(a) as s:
        assert s.tags.list_for(note["id"]) == ["travel"]


def test_a_filing_into_a_folder_deleted_elsewhere_survives_with_the_folder(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        folder = s.folders.create("Receipts")
        note = s.notes.create("taxi")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.delete(folder["id"])
    with DeviceStore.open(b) as s:
        s.folders.file_note(note["id"], folder["id"])
    sync.sync(a)
    sync_all(b, a)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert [f["id"] for f in snap["folders"]] == [folder["id"]]
    assert [(n["note_id"], n["folder_id"]) for n in snap["note_folders"]] == [
        (note["id"], folder["id"])
    ]


def test_a_purge_with_nothing_edited_below_stays_a_purge(tmp_path: Path, server: Server) -> None:
    """No false revival: a task untouched on the other device goes with its note."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("old")
        s.tasks.create(note["id"], "done long ago")
        other = s.notes.create("other")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    with DeviceStore.open(b) as s:
        s.notes.edit(other["id"], title="other, edited")  # something else waits to be pushed
    sync.sync(a)
    sync_all(b, a)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert [n["id"] for n in snap["notes"]] == [other["id"]] and snap["tasks"] == []
    assert _revived(b) == []
