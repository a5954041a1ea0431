"""A push whose answer never came (the client killed, the link cut after the server
committed), then many more edits of the same rows before the next sync.

The server applies each push entry once, by its newest op id, and takes an entry whose
older op id it applied as based on that write. A device sends at most ``MAX_OP_IDS`` op
ids a row: when it sent the newest ones, a row edited more often than that since the lost
answer (an editor that saves as the user types) came back as a conflict with the
device's own earlier write, and the edit the user made last was put aside as a conflicted
copy while the note showed an older text.

Real `duru serve`, real PostgreSQL, real SQLite files, real HTTP; the answer is lost by
a SyncApi that raises after the server answered, as a cut connection does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import test_sync
from test_sync import Server, snapshot, two_devices
from test_sync_pull_races import removed_everywhere

from duru import sync
from duru.errors import SyncServerError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.server import apply_push
from duru.sync.credentials import load
from duru.sync.http import SyncApi
from duru.sync.outbox import entries, pending
from duru.sync.protocol import MAX_OP_IDS

home = test_sync.home
server = test_sync.server


class _LostAnswers(SyncApi):
    """A SyncApi whose push reaches the server and commits, but whose answer is lost."""

    def push(self, device_id: str, entries: list[Any]) -> Any:
        super().push(device_id, entries)
        raise SyncServerError("the connection dropped before the answer came")


def lose_a_push(path: Path, where: Path) -> None:
    """Sync ``path``: its push is applied on the server, and its answer lost."""
    saved = load(where, _device_id(path))
    with _LostAnswers(saved.server, token=saved.token) as api:
        try:
            sync.sync(path, api=api, snapshots=False)
        except SyncServerError:
            return
    raise AssertionError("the push was not lost")


class _PullCut(SyncApi):
    """A SyncApi whose pushes are answered but whose pull never gets a page."""

    def changes(self, after: int, limit: int) -> Any:
        raise SyncServerError("the connection dropped before the page came")


def _cut_the_pull(path: Path, where: Path) -> None:
    """Sync ``path``: its push is answered, its pull cut."""
    saved = load(where, _device_id(path))
    with _PullCut(saved.server, token=saved.token) as api:
        try:
            sync.sync(path, api=api, snapshots=False)
        except SyncServerError:
            return
    raise AssertionError("the pull was not cut")


def _device_id(path: Path) -> str:
    with DeviceStore.open(path) as st:
        found = st.db.meta("device_id")
    assert found
    return found


def _edit(path: Path, note_id: str, times: int, tag: str) -> str:
    with DeviceStore.open(path) as st:
        for i in range(times):
            body = f"{tag} {i}: 編集 ✍️ עריכה"
            st.notes.edit(note_id, title=f"{tag} {i} 標題 🐎", body=body)
    return body


def _both_hold_without_conflicts(a: Path, b: Path, bodies: list[str]) -> None:
    """``a`` syncs with no conflict and no copy, ``b`` pulls; both hold notes of
    ``bodies`` and no conflict record."""
    report = sync.sync(a)
    assert (report.conflicts, report.copied) == (0, 0), report
    sync.sync(b)
    for path in (a, b):
        held = sorted(n["body"] for n in snapshot(path)["notes"])
        assert held == sorted(bodies), held
        assert snapshot(path)["sync_conflicts"] == []


def test_many_edits_after_a_lost_answer_are_not_a_conflict_with_itself(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("first", "body")
    sync.sync(a)
    _edit(a, note["id"], 1, "lost")
    lose_a_push(a, home)
    last = _edit(a, note["id"], MAX_OP_IDS + 6, "after")
    _both_hold_without_conflicts(a, b, [last])


def test_two_lost_answers_each_followed_by_many_edits_are_not_a_conflict(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("first", "body")
        other = st.notes.create("other", "body")
    sync.sync(a)
    for round_ in range(2):
        _edit(a, note["id"], 3, f"lost {round_}")
        _edit(a, other["id"], 1, f"lost {round_}")
        lose_a_push(a, home)
        last = _edit(a, note["id"], MAX_OP_IDS + 6, f"after {round_}")
    _both_hold_without_conflicts(a, b, [last, "lost 1 0: 編集 ✍️ עריכה"])


def test_a_purge_after_a_lost_answer_and_many_edits_does_not_bring_the_note_back(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """The stale delete was a conflict that the edit won: the purged note came back."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("to purge", "body")
        kept = st.notes.create("kept", "body")
    sync.sync(a)
    sync.sync(b)
    _edit(a, note["id"], 1, "lost")
    lose_a_push(a, home)
    _edit(a, note["id"], MAX_OP_IDS + 6, "after")
    with DeviceStore.open(a) as st:
        st.notes.trash(note["id"])
        st.notes.purge(note["id"])
    report = sync.sync(a)
    assert report.conflicts == 0, report
    sync.sync(b)
    for path in (a, b):
        assert [n["id"] for n in snapshot(path)["notes"]] == [kept["id"]]


def test_a_tag_added_on_two_devices_with_the_answer_lost_ends_as_one_and_removes(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """The retried push of a tag the server had superseded was answered "duplicate": the
    device kept its own row, which the server never took, the kept row waited for ever
    beside it, and removing the tag there removed it nowhere (the kept row came back)."""
    a, b = two_devices(tmp_path, server)
    tag = "同じ 🏷️ תג"
    with DeviceStore.open(a) as st:
        note = st.notes.create("tagged", "x")
    sync.sync(a)
    sync.sync(b)
    for path in (b, a):
        with DeviceStore.open(path) as st:
            st.tags.add(note["id"], tag)
    sync.sync(b)
    lose_a_push(a, home)
    report = sync.sync(a)
    assert (report.superseded, report.waiting) == (1, 0), report
    sync.sync(b)
    tags_a, tags_b = snapshot(a)["note_tags"], snapshot(b)["note_tags"]
    assert tags_a == tags_b and [t["tag"] for t in tags_a] == [tag]
    removed_everywhere(a, b, note["id"], tag)


def test_an_edit_after_a_lost_answer_reaches_a_device_that_saw_the_lost_write(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """The server applied the next push on the version of the lost write, but the row's
    MAC vouched for the version sealed before it: a device that had pulled the lost write
    refused the edit as "an older version replayed", quarantined it and kept the older
    text (``duru sync`` exited 1 naming a replay that no one made)."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        edited = st.notes.create("edited", "body")
    sync.sync(a)
    with DeviceStore.open(a) as st:
        new = st.notes.create("made, then its answer lost", "body")
    for times in (1, MAX_OP_IDS + 6):
        _edit(a, edited["id"], 1, f"lost {times}")
        lose_a_push(a, home)
        assert sync.sync(b).quarantined == 0
        last = _edit(a, edited["id"], times, f"after {times}")
        _edit(a, new["id"], times, f"new after {times}")
        report = sync.sync(a)
        assert (report.conflicts, report.copied, report.quarantined) == (0, 0, 0), report
        report = sync.sync(b)
        assert (report.quarantined, report.copied) == (0, 0), report
        for path in (a, b):
            bodies = {n["id"]: n["body"] for n in snapshot(path)["notes"]}
            assert bodies[edited["id"]] == last, path
            assert bodies[new["id"]].startswith(f"new after {times}"), path
            assert snapshot(path)["sync_conflicts"] == [] and len(bodies) == 2


def test_rebase_is_answered_only_to_a_push_that_takes_it(
    tmp_path: Path, server: Server, home: Path, pg_url: str
) -> None:
    """A client from before the outcome is answered as it was (applied on the version of
    the lost write); the server writes nothing for a push it answers ``rebase``."""
    a, _ = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("first", "body")
    sync.sync(a)
    _edit(a, note["id"], 1, "lost")
    lose_a_push(a, home)
    _edit(a, note["id"], 1, "after")
    saved = load(home, _device_id(a))
    with Database.open(a) as db:
        sent = [e for _, e in entries(db, pending(db), saved.keys())]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        (taken,), head = apply_push(conn, saved.user_id, "d", sent, rebase=True)
        assert taken.outcome == "rebase" and taken.version > sent[0].base_version
        (again,), head_again = apply_push(conn, saved.user_id, "d", sent, rebase=True)
        assert again == taken and head_again == head  # nothing written, nothing recorded
        (old,), _ = apply_push(conn, saved.user_id, "d", sent)
    assert old.outcome == "applied" and old.version > taken.version


def test_a_note_filed_again_after_its_retried_unfiling_is_no_conflict(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """A delete sent again after its answer was lost is answered ``duplicate``, with the
    version of the server's tombstone; the device kept the version it deleted instead,
    until a pull brought the tombstone. A pull cut before then, the note filed again was
    based on the older version, which the server's tombstone is not: a conflict record
    on both devices for a filing no one else touched."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("filed 📁", "x")
        folder = st.folders.create("フォルダ תיקייה")
        st.folders.file_note(note["id"], folder["id"])
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(a) as st:
        assert st.folders.unfile(note["id"])
    lose_a_push(a, home)
    _cut_the_pull(a, home)
    with DeviceStore.open(a) as st:
        st.folders.file_note(note["id"], folder["id"])
    report = sync.sync(a)
    assert (report.conflicts, report.copied, report.quarantined) == (0, 0, 0), report
    sync.sync(b)
    for path in (a, b):
        with DeviceStore.open(path) as st:
            assert st.folders.folder_of(note["id"])["id"] == folder["id"], path
        assert snapshot(path)["sync_conflicts"] == [], path


def test_an_edit_there_on_a_lost_write_merges_cleanly_with_an_edit_here_after_it(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """After a ``rebase`` answer the merge base stayed the row as it was before the lost
    write: an edit of the body on another device, made on top of that write, merged with
    a new title here as if both had changed the title (the lost write's title against
    this one), a conflicted copy for edits that never clashed."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as st:
        note = st.notes.create("title 0 標題", "body 0 本文")
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(a) as st:
        st.notes.edit(note["id"], title="title 1 🐎 lost answer")
    lose_a_push(a, home)
    sync.sync(b)
    with DeviceStore.open(b) as st:
        st.notes.edit(note["id"], body="body from b ✍️ עריכה")
    sync.sync(b)
    with DeviceStore.open(a) as st:
        st.notes.edit(note["id"], title="title 2 after 題")
    report = sync.sync(a)
    assert (report.conflicts, report.copied, report.quarantined) == (0, 0, 0), report
    sync.sync(b)
    for path in (a, b):
        found = snapshot(path)
        assert [(n["title"], n["body"]) for n in found["notes"]] == [
            ("title 2 after 題", "body from b ✍️ עריכה")
        ], path
        assert found["sync_conflicts"] == [], path
