"""Writes on this device while a pull is under way, and pulled rows that wait.

- A row deleted here while the pull brings it again at the version deleted (restamped:
  a conflict on its note): refused as "a deleted row brought back", quarantined and
  ``duru sync`` exited 1, for a race in which no one replayed anything.
- A pulled row that waits (the same tag just added here under another id, a parent
  task not here yet): its tombstone did not end the wait, a newer version placed did
  not either, and an edit here while it waited was written over once it was placed.

Real `duru serve`, real PostgreSQL, real SQLite files, real HTTP; the local writes are
made by another connection while pages are on their way (a SyncApi that writes after
fetching one), as the app does while ``duru sync --watch`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import test_sync
from test_sync import Server, snapshot, two_devices

from duru import sync
from duru.local import DeviceStore
from duru.sync.credentials import load
from duru.sync.http import SyncApi

home = test_sync.home
server = test_sync.server


class _DuringPull(SyncApi):
    """A SyncApi that runs ``then`` once, after it fetched the first page of changes."""

    def __init__(self, *args: Any, then: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.then = then

    def changes(self, after: int, limit: int) -> Any:
        page = super().changes(after, limit)
        then, self.then = self.then, None
        if then is not None:
            then()
        return page


def _device_id(path: Path) -> str:
    with DeviceStore.open(path) as st:
        found = st.db.meta("device_id")
    assert found
    return found


def _tagged_on_b(a: Path, b: Path, tag: str) -> dict[str, Any]:
    """A note made on ``a``, on both devices, then tagged ``tag`` on ``b`` (pushed)."""
    with DeviceStore.open(a) as st:
        note = st.notes.create("tagged", "x")
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(b) as st:
        st.tags.add(note["id"], tag)
    sync.sync(b)
    return note


def _pull_racing(a: Path, b: Path, home: Path, race: Callable[[], None]) -> None:
    """``a`` pulls with ``race`` run during its pull, syncs again with nothing left
    waiting, and ``b`` syncs."""
    saved = load(home, _device_id(a))
    with _DuringPull(saved.server, token=saved.token, then=race) as api:
        sync.sync(a, api=api, snapshots=False)
    assert sync.sync(a).waiting == 0
    sync.sync(b)


def removed_everywhere(a: Path, b: Path, note_id: str, tag: str) -> None:
    """``tag`` removed from the note on ``a``: after a sync of each, neither has a tag."""
    with DeviceStore.open(a) as st:
        assert st.tags.remove(note_id, tag)
    sync.sync(a)
    sync.sync(b)
    assert snapshot(a)["note_tags"] == snapshot(b)["note_tags"] == []


def test_a_tag_removed_here_while_the_pull_brings_it_again_is_no_alarm(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a, b = two_devices(tmp_path, server)
    tag = "タグ 🏷️ תג"
    with DeviceStore.open(a) as st:
        note = st.notes.create("tagged 標題", "x")
        st.tags.add(note["id"], tag)
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(b) as st:
        st.notes.edit(note["id"], body="edited on b ✍️")
    sync.sync(b)
    # a's edit of the same note is stale: a conflict, and the server gives the note and
    # the rows below it (the tag) new change numbers, at the versions a holds.
    with DeviceStore.open(a) as st:
        st.notes.edit(note["id"], title="titled on a 🐎")

    def remove_here() -> None:
        with DeviceStore.open(a) as st:
            assert st.tags.remove(note["id"], tag)

    saved = load(home, _device_id(a))
    with _DuringPull(saved.server, token=saved.token, then=remove_here) as api:
        report = sync.sync(a, api=api, snapshots=False)
    assert (report.conflicts, report.quarantined) == (1, 0), report
    sync.sync(a)
    sync.sync(b)
    for path in (a, b):
        found = snapshot(path)
        assert found["note_tags"] == [], path
        assert [(n["title"], n["body"]) for n in found["notes"]] == [
            ("titled on a 🐎", "edited on b ✍️")
        ]


def test_a_waiting_row_deleted_on_the_server_does_not_come_back_later(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """A pulled tag row that could not be placed (this device had just added the same
    tag under another id) waits; when its tombstone came, the wait was not ended. It was
    reported as waiting at every sync, and once the tag here was removed it was placed:
    the tag removed everywhere came back on this device alone."""
    a, b = two_devices(tmp_path, server)
    tag = "同じ 🏷️ تاغ"
    note = _tagged_on_b(a, b, tag)

    def race() -> None:
        with DeviceStore.open(a) as st:  # the same tag here, under another id
            st.tags.add(note["id"], tag)
        with DeviceStore.open(b) as st:  # and b's row goes
            assert st.tags.remove(note["id"], tag)
        sync.sync(b)

    _pull_racing(a, b, home, race)
    assert [t["tag"] for t in snapshot(a)["note_tags"]] == [tag]
    assert snapshot(a)["note_tags"] == snapshot(b)["note_tags"]
    removed_everywhere(a, b, note["id"], tag)


def test_a_waiting_row_pulled_again_newer_is_not_put_back_as_it_was(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """A row that waited, then came again in a newer version that could be placed: the
    older waiting version stayed, and once its way was clear it was written over the
    newer one (a tag renamed everywhere went back to its old name on this device)."""
    a, b = two_devices(tmp_path, server)
    tag, renamed = "同じ 🏷️", "改名 ✏️ שם"
    note = _tagged_on_b(a, b, tag)

    def race() -> None:
        with DeviceStore.open(a) as st:  # the same tag here, under another id
            st.tags.add(note["id"], tag)
        with DeviceStore.open(b) as st:  # and b's row is renamed
            assert st.tags.rename(tag, renamed) == 1
        sync.sync(b)

    _pull_racing(a, b, home, race)
    assert sorted(t["tag"] for t in snapshot(a)["note_tags"]) == sorted([tag, renamed])
    assert snapshot(a)["note_tags"] == snapshot(b)["note_tags"]
    with DeviceStore.open(a) as st:
        assert st.tags.remove(note["id"], tag)
    assert sync.sync(a).waiting == 0
    sync.sync(b)
    assert [t["tag"] for t in snapshot(a)["note_tags"]] == [renamed]
    assert snapshot(a)["note_tags"] == snapshot(b)["note_tags"]


class _AfterFirstPage(SyncApi):
    """A SyncApi that runs ``then`` once the first page of a pull is in the device
    (from the thread that fetches the second page, before it returns it)."""

    def __init__(self, *args: Any, then: Any, device: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.then, self.device, self.calls = then, device, 0

    def changes(self, after: int, limit: int) -> Any:
        page = super().changes(after, limit)
        self.calls += 1
        if self.calls == 2:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with DeviceStore.open(self.device) as st:
                    if int(st.db.meta("sync_cursor") or 0) >= after:
                        break
                time.sleep(0.01)
            self.then()
        return page


def _moved_under_a_later_parent(
    tmp_path: Path, server: Server
) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """Two synced devices; on b a task moved under a new parent task that was then
    edited, so the parent's change comes after the moved task's (pages go by change
    number) and a's pull brings the task first. (a, b, the task, its new parent)."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("tasks 作業", "x")
        task = st.tasks.create(note["id"], "do it 作業")
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(b) as st:
        parent = st.tasks.create(note["id"], "parent 親")
        st.tasks.move(task["id"], parent["id"])
    sync.sync(b)
    with DeviceStore.open(b) as st:
        st.tasks.edit(parent["id"], content="parent edited 親")
    sync.sync(b)
    return a, b, task, parent


def test_an_edit_made_while_its_row_waits_for_a_parent_is_merged_not_lost(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """A task moved under a new parent task elsewhere comes before that parent when the
    parent changed later (pages go by change number), so it waits for it. Edited here
    meanwhile, its waiting version was written over the edit once the parent came, and
    the edit was gone on every device, without a conflict or a copy."""
    a, b, task, parent = _moved_under_a_later_parent(tmp_path, server)

    def edit_here() -> None:
        with DeviceStore.open(a) as st:
            assert st.db.scalar("SELECT count(*) FROM sync_waiting") == 1
            st.tasks.edit(task["id"], content="edited here ✍️ هنا")

    saved = load(home, _device_id(a))
    with _AfterFirstPage(saved.server, token=saved.token, then=edit_here, device=a) as api:
        report = sync.sync(a, api=api, snapshots=False, page=1)
    assert (report.waiting, report.copied) == (0, 0), report
    sync.sync(a)
    sync.sync(b)
    assert snapshot(a)["tasks"] == snapshot(b)["tasks"]
    moved = {t["id"]: t for t in snapshot(b)["tasks"]}[task["id"]]
    assert (moved["content"], moved["parent_task_id"]) == ("edited here ✍️ هنا", parent["id"])


def test_a_merge_deferred_for_a_parent_on_a_later_page_is_done_when_it_comes(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """A pulled row that meets an edit here and points at a parent not here yet cannot
    be merged (``deferred``): it was dropped, and no later page or pull merged it again
    (they do not bring it again). The edit then went to the server on the old version:
    a conflict revision on every device, for edits that merge cleanly."""
    a, b, task, parent = _moved_under_a_later_parent(tmp_path, server)

    def edit_here() -> None:
        with DeviceStore.open(a) as st:
            st.tasks.edit(task["id"], content="edited here ✍️ هنا")

    saved = load(home, _device_id(a))
    with _DuringPull(saved.server, token=saved.token, then=edit_here) as api:
        report = sync.sync(a, api=api, snapshots=False, page=1)
    assert (report.conflicts, report.conflicts_received, report.copied) == (0, 0, 0), report
    assert (report.merged, report.waiting) == (1, 0), report
    sync.sync(b)
    assert snapshot(a)["tasks"] == snapshot(b)["tasks"]
    moved = {t["id"]: t for t in snapshot(b)["tasks"]}[task["id"]]
    assert (moved["content"], moved["parent_task_id"]) == ("edited here ✍️ هنا", parent["id"])
    assert snapshot(a)["sync_conflicts"] == snapshot(b)["sync_conflicts"] == []
