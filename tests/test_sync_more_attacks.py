"""Hostile sync scenarios the other sync tests leave out: the operators' bulk tools
(``duru upload`` / ``duru download``) on an account whose devices sync, a full resync with
edits waiting to be pushed, three devices editing one thing at once, and ``duru sync``
killed with SIGKILL during a big pull full of conflicts.

What each must keep: nothing lost, no edit overwritten unseen (the loser kept as a
conflict revision or a conflicted copy), every device ending with the same export, and
a clear one-line error (never a traceback) for what a tool refuses.

Real ``duru serve`` over PostgreSQL, real SQLite files, real crypto; ``duru`` processes
where a kill or an exit status matters.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import test_sync
from test_sync import KDF, PASS, Server, device, snapshot, sync_all, two_devices

from duru import sync
from duru.errors import UsageError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.server import purge_tombstones
from duru.sync.bulk import download, upload

home = test_sync.home
server = test_sync.server

TWO_PARAGRAPHS = "first paragraph\n\nsecond paragraph\n"


def _duru(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DURU_PASSPHRASE": PASS}
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _logged_in(tmp_path: Path, server: Server, name: str) -> Path:
    path = device(tmp_path, name)
    sync.login(path, server=server.url, user="ada", passphrase=PASS)
    return path


def _three(tmp_path: Path, server: Server) -> tuple[Path, Path, Path]:
    a, b = two_devices(tmp_path, server)
    return a, b, _logged_in(tmp_path, server, "c")


def _bodies(path: Path) -> dict[str, str]:
    return {n["title"]: n["body"] for n in snapshot(path)["notes"]}


def _quarantined(path: Path) -> list[str]:
    with Database.open(path, create=False) as db:
        return [str(r["reason"]) for r in db.rows("SELECT reason FROM quarantine")]


def _seeded(tmp_path: Path, pg_url: str) -> dict[str, Any]:
    """An account seeded by ``upload`` from a device that never synced: one note."""
    seed = device(tmp_path, "seed")
    with DeviceStore.open(seed) as s:
        note = s.notes.create("plan", body=TWO_PARAGRAPHS)
    upload(seed, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    return note


# -- the bulk tools beside devices that sync ------------------------------------------


def test_rows_seeded_by_upload_merge_edits_to_different_paragraphs(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    """Upload writes the rows at the version the device had: 0 for a device that never
    synced. Devices pulled them at version 0 and kept no merge base for their edits
    (``Database._keep_base`` took version 0 for "never on the server"), so edits to two
    paragraphs clashed as a whole and left a conflicted copy instead of merging."""
    note = _seeded(tmp_path, pg_url)
    b, c = _logged_in(tmp_path, server, "b"), _logged_in(tmp_path, server, "c")
    sync_all(b, c)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="first paragraph, B\n\nsecond paragraph\n")
    with DeviceStore.open(c) as s:
        s.notes.edit(note["id"], body="first paragraph\n\nsecond paragraph, C\n")
    sync_all(b, c)
    assert snapshot(b) == snapshot(c)
    assert _bodies(b) == {"plan": "first paragraph, B\n\nsecond paragraph, C\n"}


def test_a_downloaded_copy_logged_in_takes_an_edit_made_meanwhile_without_a_copy(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    """A download has no cursor, so its first sync took its rows for rows made before
    syncing (``outbox.seed``) and pushed every one again as new. A row edited on another
    device since the download came back as a conflict merged with no base: a conflicted
    copy of the untouched row, and the other device's edit mixed with the old text (the
    paragraph it deleted back in the note)."""
    note = _seeded(tmp_path, pg_url)
    copy = tmp_path / "restored.sqlite"
    download(copy, server_url=pg_url, passphrase=PASS, user="ada")
    b = _logged_in(tmp_path, server, "b")
    sync.sync(b)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="rewritten on b\n")
    sync.sync(b)
    sync.login(copy, server=server.url, user="ada", passphrase=PASS)
    report = sync.sync(copy)
    assert (report.pushed, report.conflicts, report.copied) == (0, 0, 0)
    sync_all(b, copy)
    assert snapshot(b) == snapshot(copy)
    assert _bodies(b) == {"plan": "rewritten on b\n"}


def test_a_downloaded_copy_logs_in_to_no_other_account(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    """A download is that account's rows: logged in to another account, its full resync
    would have dropped them and mixed in the other account's."""
    _seeded(tmp_path, pg_url)
    copy = tmp_path / "restored.sqlite"
    download(copy, server_url=pg_url, passphrase=PASS, user="ada")
    sync.register(device(tmp_path, "bob"), server=server.url, user="bob", passphrase=PASS, kdf=KDF)
    with pytest.raises(UsageError, match="synced with another account before"):
        sync.login(copy, server=server.url, user="bob", passphrase=PASS)
    sync.login(copy, server=server.url, user="ada", passphrase=PASS)
    assert _bodies(copy) == {"plan": TWO_PARAGRAPHS}


def test_a_download_edited_before_login_merges_with_an_edit_made_elsewhere(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    note = _seeded(tmp_path, pg_url)
    copy = tmp_path / "restored.sqlite"
    download(copy, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(copy) as s:
        s.notes.edit(note["id"], body="first paragraph, restored copy\n\nsecond paragraph\n")
    b = _logged_in(tmp_path, server, "b")
    sync.sync(b)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="first paragraph\n\nsecond paragraph, B\n")
    sync.sync(b)
    sync.login(copy, server=server.url, user="ada", passphrase=PASS)
    sync_all(copy, b)
    assert snapshot(b) == snapshot(copy)
    assert _bodies(b) == {"plan": "first paragraph, restored copy\n\nsecond paragraph, B\n"}


def test_an_upload_of_a_restored_and_corrected_copy_reaches_every_device(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("minutes", body="as written")
    sync_all(a, b)
    restored = tmp_path / "restored.sqlite"
    download(restored, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(restored) as s:
        s.notes.edit(note["id"], body="corrected by the operator")
    assert (
        _duru("upload", "--db", str(restored), "--user", "ada", "--server", pg_url).returncode == 0
    )
    c = _logged_in(tmp_path, server, "c")
    sync_all(a, b, c)
    assert _bodies(c) == {"minutes": "corrected by the operator"}
    assert snapshot(a) == snapshot(b) == snapshot(c)


def test_an_upload_over_an_unpushed_edit_merges_with_it(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    """A re-upload is a new write of every row: a device's edit made before it and pushed
    after it is merged with it (other paragraphs), never replaced, nor a replay."""
    note = _seeded(tmp_path, pg_url)
    b = _logged_in(tmp_path, server, "b")
    sync.sync(b)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="first paragraph\n\nsecond paragraph, B\n")
    restored = tmp_path / "restored.sqlite"
    download(restored, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(restored) as s:
        s.notes.edit(note["id"], body="first paragraph, operator\n\nsecond paragraph\n")
    upload(restored, server_url=pg_url, passphrase=PASS, user="ada")
    c = _logged_in(tmp_path, server, "c")
    sync_all(b, c)
    assert _quarantined(b) == _quarantined(c) == []
    assert snapshot(b) == snapshot(c)
    assert _bodies(c) == {"plan": "first paragraph, operator\n\nsecond paragraph, B\n"}


def test_an_upload_of_an_older_copy_over_deletes_leaves_devices_agreeing(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        doomed = s.notes.create("doomed", tags=["t"])
        s.notes.create("kept")
    sync_all(a, b)
    backup = tmp_path / "backup.sqlite"
    download(backup, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(a) as s:
        s.notes.trash(doomed["id"])
        s.notes.purge(doomed["id"])
    sync_all(a, b)
    assert _duru("upload", "--db", str(backup), "--user", "ada", "--server", pg_url).returncode == 0
    c = _logged_in(tmp_path, server, "c")
    sync_all(a, b, c)
    assert _quarantined(a) == _quarantined(b) == []
    assert snapshot(a)["notes"] == snapshot(c)["notes"]


def test_an_upload_refused_by_a_newer_tag_row_is_one_line_and_writes_nothing(
    tmp_path: Path, server: Server, pg_url: str, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("tagged", tags=["work"])
    sync_all(a, b)
    backup = tmp_path / "backup.sqlite"
    download(backup, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(a) as s:  # the tag row is replaced by a new one of the same tag
        s.tags.remove(note["id"], "work")
        s.tags.add(note["id"], "work")
    sync_all(a, b)
    with psycopg.connect(pg_inspect_url) as owner:
        before = owner.execute("SELECT max(change_seq) FROM note_tags").fetchone()
    run = _duru("upload", "--db", str(backup), "--user", "ada", "--server", pg_url)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert "a note_tags row of this device takes the place of another row" in run.stderr
    assert "nothing was uploaded" in run.stderr and "DETAIL" not in run.stderr
    with psycopg.connect(pg_inspect_url) as owner:
        assert owner.execute("SELECT max(change_seq) FROM note_tags").fetchone() == before
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    assert [t["tag"] for t in snapshot(b)["note_tags"]] == ["work"]


# -- three devices at once ---------------------------------------------------------

LINES = [
    "東京の会議は十時から",
    "",
    "👩‍👩‍👧‍👦 family plan 🇯🇵",
    "",
    "cafe\u0301 re\u0301sume\u0301 na\u0308ive",  # combining marks, not precomposed
]


def test_three_devices_edit_one_cjk_emoji_and_combining_note_and_converge(
    tmp_path: Path, server: Server
) -> None:
    a, b, c = _three(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("東京 会議 メモ", body="\n".join(LINES) + "\n")
    sync_all(a, b, c)

    def edited(at: int, line: str) -> str:
        return "\n".join(line if i == at else x for i, x in enumerate(LINES)) + "\n"

    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="大阪 会議 メモ", body=edited(0, "大阪の会議は十一時から"))
    with DeviceStore.open(b) as s:  # the same line as a: a clash; and a line of its own
        body = "\n".join(["東京の会議は中止", "", "👩‍👩‍👧 family plan 🇯🇵🎌", "", LINES[4]]) + "\n"
        s.notes.edit(note["id"], body=body)
    with DeviceStore.open(c) as s:
        s.notes.edit(
            note["id"], title="東京 会議 メモ🎉", body=edited(4, "cafe\u0301 ✓ re\u0301sume\u0301")
        )
    for p in (a, b, c):
        sync.sync(p)
    sync_all(a, b, c)
    snap = snapshot(a)
    assert snap == snapshot(b) == snapshot(c)
    notes = {n["id"]: n for n in snap["notes"]}
    merged = notes.pop(note["id"])
    assert merged["title"] == "大阪 会議 メモ🎉"
    assert merged["body"].split("\n") == [
        "大阪の会議は十一時から",
        "",
        "👩‍👩‍👧 family plan 🇯🇵🎌",
        "",
        "cafe\u0301 ✓ re\u0301sume\u0301",
        "",
    ]
    [copy] = notes.values()  # b's whole text, kept aside
    assert copy["body"] == body and "conflicted copy" in copy["title"]


def test_three_devices_move_tasks_into_a_loop_and_keep_a_tree(
    tmp_path: Path, server: Server
) -> None:
    a, b, c = _three(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("tasks")
        x, y, w = (s.tasks.create(note["id"], name)["id"] for name in ("x", "y", "w"))
    sync_all(a, b, c)
    with DeviceStore.open(a) as s:
        s.tasks.move(x, y)
    with DeviceStore.open(b) as s:
        s.tasks.move(y, w)
    with DeviceStore.open(c) as s:
        s.tasks.move(w, x)
        s.tasks.edit(x, content="x, edited on c")
    for p in (a, b, c):
        sync.sync(p)
    sync_all(a, b, c)
    snap = snapshot(a)
    assert snap == snapshot(b) == snapshot(c)
    parent = {t["id"]: t["parent_task_id"] for t in snap["tasks"]}
    for start in parent:  # no loop: every chain reaches the top
        seen, at = set(), start
        while at is not None:
            assert at not in seen, parent
            seen.add(at)
            at = parent[at]
    with DeviceStore.open(c) as s:
        shown = [t.task["content"] for t in s.tasks.list_for_note(note["id"])]
    assert sorted(shown) == ["w", "x, edited on c", "y"]


def test_a_folder_deleted_while_two_devices_file_into_it_and_below_it(
    tmp_path: Path, server: Server
) -> None:
    a, b, c = _three(tmp_path, server)
    with DeviceStore.open(a) as s:
        top = s.folders.create("Top 上")
        sub = s.folders.create("Sub 下", parent_id=top["id"])
        n1, n2 = s.notes.create("n1")["id"], s.notes.create("n2")["id"]
    sync_all(a, b, c)
    with DeviceStore.open(a) as s:
        s.folders.delete(top["id"])
    with DeviceStore.open(b) as s:
        s.folders.file_note(n1, sub["id"])
        s.folders.create("New 新", parent_id=top["id"])
    with DeviceStore.open(c) as s:
        s.folders.file_note(n2, top["id"])
        s.folders.move(sub["id"], None)
    for p in (a, b, c):
        sync.sync(p)
    sync_all(a, b, c)
    snap = snapshot(a)
    assert snap == snapshot(b) == snapshot(c)
    filed = {f["note_id"]: f["folder_id"] for f in snap["note_folders"]}
    assert filed == {n1: sub["id"], n2: top["id"]}  # both filings survive, with their folders
    assert {f["name"] for f in snap["folders"] if not f["deleted"]} >= {
        "Top 上",
        "Sub 下",
        "New 新",
    }
    assert all(_quarantined(p) == [] for p in (a, b, c))


def test_a_tag_renamed_two_ways_and_added_again_ends_the_same_everywhere(
    tmp_path: Path, server: Server
) -> None:
    a, b, c = _three(tmp_path, server)
    with DeviceStore.open(a) as s:
        n1 = s.notes.create("n1", tags=["work"])["id"]
        n2 = s.notes.create("n2", tags=["work", "job"])["id"]
    sync_all(a, b, c)
    with DeviceStore.open(a) as s:
        s.tags.rename("work", "job")
    with DeviceStore.open(b) as s:
        s.tags.rename("work", "office")
        s.tags.add(n1, "job")
    with DeviceStore.open(c) as s:
        s.tags.remove(n2, "job")
        s.tags.add(n2, "job")
    for p in (a, b, c):
        sync.sync(p)
    sync_all(a, b, c)
    snap = snapshot(a)
    assert snap == snapshot(b) == snapshot(c)
    tags = sorted((t["note_id"] == n1, t["tag"]) for t in snap["note_tags"])
    assert len(tags) == len(set(tags))  # never the same tag twice on a note
    assert (True, "job") in tags and (False, "job") in tags
    # b's rename of n1's tag lost to a's; it is kept as a revision every device has.
    kept = [json.loads(r["row_json"] or "{}").get("tag") for r in snap["sync_conflicts"]]
    assert "office" in kept or (True, "office") in tags


def test_a_subtask_added_under_a_task_deleted_elsewhere_stays_in_the_notes_list(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("trip")
        parent = s.tasks.create(note["id"], "book travel")
        other = s.tasks.create(note["id"], "pack")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.tasks.delete(parent["id"])
    with DeviceStore.open(b) as s:
        s.tasks.create(note["id"], "book the train 🚄", parent_task_id=parent["id"])
        s.tasks.move(other["id"], parent["id"])
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    live = sorted(t["content"] for t in snapshot(b)["tasks"] if not t["deleted"])
    assert live == ["book the train 🚄", "pack"]
    for p in (a, b):
        with DeviceStore.open(p) as s:
            shown = sorted(t.task["content"] for t in s.tasks.list_for_note(note["id"]))
        assert shown == live, p.name


# -- a value the device takes and the server side cannot carry --------------------


def test_a_date_past_year_9999_is_held_and_named_and_everything_else_syncs(
    tmp_path: Path, server: Server
) -> None:
    """The device store takes any 64-bit timestamp, the server side years 1 to 9999: one
    such row raised BridgeError out of every push, so nothing else of the device ever
    reached the server. It is held now, with the rows below it, as a row too big is."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("far future")
        task = s.tasks.create(note["id"], "someday", due_date=10**15)  # year 33658
        sub = s.tasks.create(note["id"], "a step of someday", parent_task_id=task["id"])
        s.notes.create("an ordinary note")
    run = _duru("sync", "--db", str(a))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"task {task['id']}: " in run.stderr and "year 1 to 9999" in run.stderr
    shown = json.loads(_duru("sync", "--db", str(a), "--json").stdout)
    assert [line.split(":")[0] for line in shown["cannot_cross"]] == [f"task {task['id']}"]
    assert shown["held"] == 2  # the task and its subtask
    sync.sync(b)
    assert set(_bodies(b)) == {"far future", "an ordinary note"}
    assert snapshot(b)["tasks"] == []
    with DeviceStore.open(a) as s:  # changed to a date the server carries: it goes
        s.tasks.set_due(task["id"], 1_900_000_000_000)
    assert _duru("sync", "--db", str(a)).returncode == 0
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    assert sorted(t["id"] for t in snapshot(b)["tasks"]) == sorted([task["id"], sub["id"]])


# -- a full resync with edits waiting to be pushed ------------------------------------


def _purge_every_tombstone(pg_url: str, inspect_url: str) -> int:
    """Age every tombstone past the horizon (by hand, past row level security), then purge
    as ``duru serve`` does."""
    with psycopg.connect(inspect_url, autocommit=True) as owner:
        for table in ("notes", "note_tags", "note_folders", "folders", "tasks"):
            owner.execute(
                f"UPDATE {table} SET deleted_at = now() - interval '100 days'"
                " WHERE deleted_at IS NOT NULL"
            )
    with psycopg.connect(pg_url, autocommit=True) as owner:
        return purge_tombstones(owner, timedelta(days=90))


def test_a_resync_behind_the_horizon_pushes_the_edits_waiting_and_keeps_the_rest_aside(
    tmp_path: Path, server: Server, pg_url: str, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        kept = s.notes.create("kept", body="v1")
        doomed = s.notes.create("doomed")
        task = s.tasks.create(doomed["id"], "task of the doomed note")
        folder = s.folders.create("Folder")
        gone = s.folders.create("Gone")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(doomed["id"])
        s.notes.purge(doomed["id"])
        s.folders.delete(gone["id"])
    sync.sync(a)
    with DeviceStore.open(b) as s:  # offline for months
        s.notes.edit(kept["id"], body="v2 from b 🎉")
        new = s.notes.create("new on b", tags=["later"], folder_id=folder["id"])
        s.tasks.edit(task["id"], content="edited under the purged note")
        s.folders.file_note(kept["id"], gone["id"])
    assert _purge_every_tombstone(pg_url, pg_inspect_url) > 0
    run = _duru("sync", "--db", str(b), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["resynced"] is True
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert _bodies(a) == {"kept": "v2 from b 🎉", "new on b": ""}
    assert [f["note_id"] for f in snap["note_folders"]] == [new["id"]]
    # What had nothing left to land on is kept aside, as an open revision on every device.
    aside = {r["entity"]: json.loads(r["row_json"]) for r in snap["sync_conflicts"]}
    assert aside["task"]["content"] == "edited under the purged note"
    assert aside["note_folder"]["folder_id"] == gone["id"]
    with Database.open(b, create=False) as db:
        assert db.scalar("SELECT count(*) FROM outbox") == 0


# -- SIGKILL during a big pull full of merges and clashes -----------------------------


def test_sync_killed_during_a_pull_of_merges_and_clashes_loses_and_doubles_nothing(
    tmp_path: Path, server: Server
) -> None:
    n, clash, fresh = 600, 40, 150
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s, s.db.transaction():
        ids = [
            s.notes.create(f"note {i}", body=f"p1 {i}\n\np2 {i}\n", tags=[f"t{i % 5}"])["id"]
            for i in range(n)
        ]
    sync_all(a, b)
    with DeviceStore.open(a) as s, s.db.transaction():
        for i, nid in enumerate(ids):
            s.notes.edit(nid, body=f"p1 {i} A\n\np2 {i}\n", title=f"A {i}" if i < clash else None)
    with DeviceStore.open(b) as s, s.db.transaction():
        for i, nid in enumerate(ids):
            s.notes.edit(nid, body=f"p1 {i}\n\np2 {i} B\n", title=f"B {i}" if i < clash else None)
        for i in range(fresh):
            s.notes.create(f"new on b {i}", body="東京")
    sync.sync(a)
    rnd = random.Random(11)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "duru.cli", "sync", "--db", str(b), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=rnd.uniform(0.4, 2.0))
            assert proc.returncode == 0 and "Traceback" not in err, err
            break
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
    print(f"killed {kills} times")
    run = _duru("sync", "--db", str(b), "--json")
    assert run.returncode == 0, run.stderr
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    titles = [x["title"] for x in snap["notes"]]
    assert sum("conflicted copy" in t for t in titles) == clash  # one copy per clash
    assert sum(t.startswith("new on b") for t in titles) == fresh
    body = {x["id"]: x["body"] for x in snap["notes"]}
    assert [i for i, nid in enumerate(ids) if body[nid] != f"p1 {i} A\n\np2 {i} B\n"] == []
    with Database.open(b, create=False) as db:
        assert db.scalar("SELECT count(*) FROM outbox") == 0
        assert db.scalar("SELECT count(*) FROM sync_waiting") == 0


# -- clocks far apart ------------------------------------------------------------------

FUTURE_MS = 253_402_300_000_000  # 9999-12-31, a clock run far ahead (the last year carried)
PAST_MS = -2_208_988_800_000  # 1900-01-01, a clock reset far back


def test_devices_with_clocks_far_ahead_and_far_behind_merge_by_order_not_by_time(
    tmp_path: Path, server: Server
) -> None:
    """Device times are only stamps (``created_at``, ``updated_at``): which write wins
    follows the server's order, so a device whose clock runs ahead wins nothing by it and
    one running behind loses nothing by it."""
    a, b, c = _three(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("clocks", body=TWO_PARAGRAPHS)
    sync_all(a, b, c)
    with Database.open(b) as db:  # ahead: edits the first paragraph
        db.update(
            "note",
            note["id"],
            {"body": "first paragraph, B\n\nsecond paragraph\n", "updated_at": FUTURE_MS},
        )
    with Database.open(c) as db:  # behind: edits the second paragraph and the title
        db.update(
            "note",
            note["id"],
            {
                "title": "clocks, from c",
                "body": "first paragraph\n\nsecond paragraph, C\n",
                "updated_at": PAST_MS,
            },
        )
        made = db.insert("note", {"title": "made in 1900", "created_at": PAST_MS})
    sync.sync(c)  # the past first: it reaches the server first, so its title stands
    sync_all(b, a, c)
    snap = snapshot(a)
    assert snap == snapshot(b) == snapshot(c)
    notes = {n["id"]: n for n in snap["notes"]}
    merged = notes[note["id"]]
    assert (merged["title"], merged["body"]) == (
        "clocks, from c",
        "first paragraph, B\n\nsecond paragraph, C\n",
    )
    assert merged["updated_at"] == FUTURE_MS  # both changed it: the later stamp stays
    assert notes[made["id"]]["created_at"] == PAST_MS
    assert all(_quarantined(p) == [] for p in (a, b, c))


def test_a_download_logged_in_after_the_horizon_drops_what_was_purged_meanwhile(
    tmp_path: Path, server: Server, pg_url: str, pg_inspect_url: str
) -> None:
    a = device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(a) as s:
        doomed = s.notes.create("doomed", tags=["x"])
        s.notes.create("kept")
    sync.sync(a)
    copy = tmp_path / "restored.sqlite"
    download(copy, server_url=pg_url, passphrase=PASS, user="ada")
    with DeviceStore.open(a) as s:
        s.notes.trash(doomed["id"])
        s.notes.purge(doomed["id"])
    sync.sync(a)
    assert _purge_every_tombstone(pg_url, pg_inspect_url) == 2  # months later
    sync.login(copy, server=server.url, user="ada", passphrase=PASS)
    assert _duru("sync", "--db", str(copy)).returncode == 0
    sync_all(a, copy)
    assert snapshot(copy) == snapshot(a)
    assert set(_bodies(copy)) == {"kept"}
