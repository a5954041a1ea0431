"""Hostile attacks on conflicts: ``duru conflicts list|show|resolve`` and the three-way
merge of two devices' edits.

What each attack checks: nothing is lost (every version that existed reaches every
device or stays in a conflict record), the CLI never shows a traceback (one clear line
and a non-zero exit), and devices converge. A defect is a strict xfail naming it.

Real ``duru serve`` over PostgreSQL, real SQLite files, real crypto; ``duru`` processes
where an exit status or a kill matters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import test_sync
from test_sync import KDF, PASS, Server, device, snapshot, sync_all, two_devices
from test_sync import _clash as clash

from duru import sync
from duru.errors import SyncServerError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.sync.http import SyncApi
from duru.sync.merge import merge_text

home = test_sync.home
server = test_sync.server


def _duru(*args: str | bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args],
        env={**os.environ, "DURU_PASSPHRASE": PASS},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _listed(path: Path, *extra: str) -> list[dict[str, Any]]:
    done = _duru("conflicts", "list", "--json", *extra, "--db", str(path))
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def _resolve(path: Path, conflict: str, keep: str) -> subprocess.CompletedProcess[str]:
    done = _duru("conflicts", "resolve", conflict, "--keep", keep, "--db", str(path))
    assert done.returncode == 0, done.stderr
    return done


def _one_line_error(done: subprocess.CompletedProcess[str], code: int) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stderr.startswith("duru: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def _task_clash(tmp_path: Path, server: Server) -> tuple[Path, Path, dict[str, Any]]:
    """Two devices that gave one task different contents: A's edit set aside (B's won)."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("note", body="b")
        task = s.tasks.create(note["id"], "buy milk")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.tasks.edit(task["id"], content="buy oat milk")
    with DeviceStore.open(b) as s:
        s.tasks.edit(task["id"], content="buy soy milk")
    sync_all(a, b)
    return a, b, note


def _titles(path: Path) -> list[str]:
    return sorted(n["title"] for n in snapshot(path)["notes"])


def _everything(path: Path) -> str:
    """All a device holds, rows and conflict records, as one text to search."""
    snap = snapshot(path)
    with Database.open(path, create=False) as db:
        snap["all_conflicts"] = db.rows("SELECT row_json FROM sync_conflicts")
    return json.dumps(snap, ensure_ascii=False)


# -- the three-way merge of text -------------------------------------------------------


def test_scripts_emoji_rtl_and_combining_marks_merge_by_line() -> None:
    base = "東京の会議\nשלום עולם\ncafe\u0301 🎉\n👨\u200d👩\u200d👧 family\n"
    mine = "東京の会議、延期\nשלום עולם\ncafe\u0301 🎉\n👨\u200d👩\u200d👧 family\n"
    theirs = "東京の会議\nשלום עולם\ncafe\u0301 🎉🎂\n👨\u200d👩\u200d👧 family!\n"
    assert merge_text(base, mine, theirs) == (
        "東京の会議、延期\nשלום עולם\ncafe\u0301 🎉🎂\n👨\u200d👩\u200d👧 family!\n",
        True,
    )
    # One line (a title): words merge, an accent added on a word is that word's edit.
    assert merge_text("cafe du monde", "cafe\u0301 du monde", "cafe du monde 東京") == (
        "cafe\u0301 du monde 東京",
        True,
    )


def test_crlf_lines_and_inserts_at_one_point_merge_or_clash_never_mix() -> None:
    base = "one\r\ntwo\r\nthree\r\n"
    assert merge_text(base, "ONE\r\ntwo\r\nthree\r\n", "one\r\ntwo\r\nTHREE\r\n") == (
        "ONE\r\ntwo\r\nTHREE\r\n",
        True,
    )
    # One side turned every CRLF to LF, the other edited a line: a clash (the caller
    # keeps mine as a copy), never a text with the edit silently dropped.
    merged, clean = merge_text(base, "one\ntwo\nthree\n", "one\r\ntwo\r\nTHREE\r\n")
    assert not clean and merged == "one\r\ntwo\r\nTHREE\r\n"
    # Both insert at one point: a clash keeping theirs; the same insert is taken once.
    base = "intro\nend\n"
    assert merge_text(base, "intro\nmine\nend\n", "intro\ntheirs\nend\n") == (
        "intro\ntheirs\nend\n",
        False,
    )
    assert merge_text(base, "intro\nsame\nend\n", "intro\nsame\nend\n") == (
        "intro\nsame\nend\n",
        True,
    )
    # Emptying a note against an edit is a clash too (mine goes whole to the copy).
    base = "para one\n\npara two\n"
    assert merge_text(base, "", "para one!\n\npara two\n") == ("para one!\n", False)


# A one-line note of 9,900 words (19,799 tokens, under the merge's 20,000), edited at
# both ends. Measured on two shared cores: 12 s for 9,000 distinct words, 33 s for a
# tally of one repeated word; the pull holds the device's write lock all the while.
_LONG_MERGE = """
from duru.sync.merge import merge_text
base = " ".join(["ha"] * 9_900)
assert merge_text(base, "START " + base, base + " END")[1]
"""


def test_merging_a_long_one_line_note_is_quick() -> None:
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-c", _LONG_MERGE], timeout=4, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"merge still running after {time.monotonic() - started:.1f} s")


# -- a text field cleared on one side --------------------------------------------------


def test_a_text_cleared_on_one_device_does_not_silently_drop_an_edit_on_the_other(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("groceries", body="x")
        task = s.tasks.create(note["id"], "buy milk", notes="remember")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.tasks.edit(task["id"], notes="remember the eggs too")
    with DeviceStore.open(b) as s:
        s.tasks.edit(task["id"], notes=None)
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    for p in (a, b):
        assert "remember the eggs too" in _everything(p)


# -- resolving ---------------------------------------------------------------------------


def test_resolving_again_and_again_changes_mind_and_converges(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    for keep in ("theirs", "mine", "both", "theirs", "both"):
        _resolve(a, c["id"], keep)
    assert _listed(a) == []
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    titles = _titles(b)
    assert titles[0] == "title from b 東京" and titles[1].startswith(
        "title from b 東京 (conflicted"
    )
    [record] = _listed(b, "--all")
    assert record["status"] == "resolved" and record["copy_id"] in {
        n["id"] for n in snapshot(b)["notes"]
    }


def test_two_devices_resolving_one_conflict_differently_keep_what_they_named(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    _resolve(a, c["id"], "mine")
    _resolve(b, c["id"], "both")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    notes = {n["id"] for n in snapshot(a)["notes"]}
    [record] = _listed(a, "--all")
    assert record["copy_id"] is None or record["copy_id"] in notes


def test_keep_both_then_an_edited_copy_survives_keep_theirs_elsewhere(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    _resolve(a, c["id"], "both")
    with DeviceStore.open(a) as s:
        s.notes.edit(c["copy_id"], body="precious words written into the copy")
    _resolve(b, c["id"], "theirs")  # B has not seen the edit: it purges the copy
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    bodies = sorted(n["body"] for n in snapshot(a)["notes"])
    assert bodies == ["body", "precious words written into the copy"]


def test_keep_mine_after_the_note_was_purged_elsewhere_brings_it_back_everywhere(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    with DeviceStore.open(b) as s:
        s.notes.trash(note)
        s.notes.purge(note)
    sync_all(b, a)
    _resolve(a, c["id"], "mine")
    sync_all(a, b)
    assert _titles(a) == _titles(b) == ["title from b 東京"]
    assert _listed(a) == _listed(b) == []


def test_a_conflict_revision_is_not_quarantined_as_a_replayed_row(
    tmp_path: Path, server: Server
) -> None:
    """Fixed: ``refusals.refuse_replays`` checked every change of a suspect row, conflict
    revisions too; a revision (its fields are not the row's) always looked replayed, so
    the device that purged a note's conflicted copy's target quarantined the copy link's
    revision instead of keeping it as a conflict record: a false tamper alarm, and the
    devices' stores differed."""
    a, b, note = clash(tmp_path, server)
    with DeviceStore.open(b) as s:
        s.notes.trash(note)
        s.notes.purge(note)
    sync_all(b, a)
    sync_all(a, b)
    for p in (a, b):
        with Database.open(p, create=False) as db:
            assert db.rows("SELECT reason FROM quarantine") == []
    assert snapshot(a) == snapshot(b)


def test_keep_both_of_a_task_whose_note_was_purged_elsewhere_is_refused_or_kept(
    tmp_path: Path, server: Server
) -> None:
    """--keep mine of a task whose note is gone: one clear line, nothing changed."""
    a, b, note = _task_clash(tmp_path, server)
    [c] = _listed(a)
    assert c["row"]["content"] == "buy soy milk"
    with DeviceStore.open(b) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    sync_all(b, a)
    refused = _duru("conflicts", "resolve", c["id"], "--keep", "mine", "--db", str(a))
    _one_line_error(refused, 1)
    [still] = _listed(a)
    assert still["status"] == "open" and still["row"]["content"] == "buy soy milk"


def test_keep_both_of_a_task_conflict_keeps_both_or_refuses(tmp_path: Path, server: Server) -> None:
    a, b, note = _task_clash(tmp_path, server)
    [c] = _listed(b)
    done = _duru("conflicts", "resolve", c["id"], "--keep", "both", "--db", str(b))
    sync_all(a, b)
    contents = sorted(t["content"] for t in snapshot(a)["tasks"])
    assert done.returncode != 0 or contents == ["buy oat milk", "buy soy milk"], done.stdout


def test_conflicts_on_a_folder_and_a_tag_are_kept_and_keep_mine_puts_them_back(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        folder = s.folders.create("Work")
        note = s.notes.create("n", body="x")
        s.tags.add(note["id"], "alpha")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.rename(folder["id"], "Work from a")
        s.tags.rename("alpha", "beta")
    with DeviceStore.open(b) as s:
        s.folders.rename(folder["id"], "Büro 東京")
        s.tags.rename("alpha", "gamma")
    sync_all(a, b)
    found = {c["entity"]: c for c in _listed(a)}
    assert found["folder"]["row"]["name"] == "Büro 東京"
    assert found["note_tag"]["row"]["tag"] == "gamma"
    for c in found.values():
        _resolve(a, c["id"], "mine")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    snap = snapshot(b)
    assert [f["name"] for f in snap["folders"]] == ["Büro 東京"]
    assert [t["tag"] for t in snap["note_tags"]] == ["gamma"]


# -- ids, errors and output ---------------------------------------------------------------


def test_malformed_truncated_and_unknown_ids_are_one_line_errors(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    db = str(a)
    for bad, code in (
        ("zzzz", 3),
        (c["id"][:3], 2),
        (c["id"] + "0", 3),
        (c["id"][:8] + "\u0301", 3),
        ("%%%%", 3),
        ("    ", 2),
        (note, 3),  # the note's id is no conflict's
    ):
        _one_line_error(_duru("conflicts", "resolve", bad, "--keep", "mine", "--db", db), code)
    _one_line_error(_duru("conflicts", "show", "zzzz", "--db", db), 3)
    _one_line_error(_duru("conflicts", "resolve", c["id"], "--keep", "MINE", "--db", db), 2)
    not_utf8 = subprocess.run(
        [sys.executable, "-m", "duru.cli", "conflicts", "resolve", b"\xff\xfe\xfd\xfc", "--db", db],
        capture_output=True,
        timeout=120,
    )
    assert not_utf8.returncode == 2 and not_utf8.stderr.count(b"\n") == 1
    assert b"Traceback" not in not_utf8.stderr
    # A device that never synced has no conflicts to list, and says so for an id.
    fresh = str(device(tmp_path, "fresh"))
    assert json.loads(_duru("conflicts", "list", "--json", "--db", fresh).stdout) == []
    _one_line_error(_duru("conflicts", "resolve", c["id"], "--db", fresh), 3)
    # Still open after all that, and a prefix in capitals with spaces finds it.
    assert _listed(a) == [c]
    shown = _duru("conflicts", "show", f" {c['id'][:8].upper()} ", "--db", db)
    assert shown.returncode == 0 and c["id"] in shown.stdout


def test_another_users_revision_cannot_be_resolved_through_the_server(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    eve = device(tmp_path, "eve")
    saved = sync.register(eve, server=server.url, user="eve", passphrase=PASS, kdf=KDF)
    with SyncApi(server.url, token=saved.token) as api:
        assert api.resolve([{"id": c["id"], "status": "resolved", "copy_id": None}]) == 0
        for bad in (
            [{"id": c["id"][:8], "status": "resolved"}],
            [{"id": c["id"], "status": "bogus"}],
            [{"id": c["id"], "status": "resolved", "copy_id": "zz"}],
            [1],
        ):
            with pytest.raises(SyncServerError, match="400"):
                api.resolve(bad)
    sync_all(a, b)
    assert [x["status"] for x in _listed(a)] == [x["status"] for x in _listed(b)] == ["copied"]


def test_json_output_of_list_show_and_resolve(tmp_path: Path, server: Server) -> None:
    a, b, note = clash(tmp_path, server)
    keys = {"id", "entity", "row_id", "kind", "status", "copy_id", "device_id", "created_at"}
    [c] = _listed(a)
    assert set(c) == keys | {"row"} and c["entity"] == "note" and c["row_id"] == note
    shown = json.loads(_duru("conflicts", "show", c["id"], "--json", "--db", str(a)).stdout)
    assert set(shown) == keys | {"row", "current"}
    assert shown["current"]["title"] == "title from a"
    done = _duru("conflicts", "resolve", c["id"], "--keep", "theirs", "--json", "--db", str(a))
    resolved = json.loads(done.stdout)
    assert set(resolved) == keys | {"row"}
    assert (resolved["status"], resolved["copy_id"]) == ("resolved", None)
    assert _listed(a) == [] and len(_listed(a, "--all")) == 1


# -- kills and being offline ---------------------------------------------------------------


def test_resolve_killed_at_any_moment_then_sync_converges(tmp_path: Path, server: Server) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    command = [sys.executable, "-m", "duru.cli", "conflicts", "resolve", c["id"]]
    for delay in (0.25, 0.35, 0.45, 0.55, 0.65):
        proc = subprocess.Popen(
            [*command, "--keep", "mine", "--db", str(a)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        # Whole or nothing: open with both notes, or resolved with mine back, no copy.
        [now] = _listed(a, "--all")
        titles = _titles(a)
        if now["status"] == "resolved":
            assert titles == ["title from b 東京"]
        else:
            assert titles[0] == "title from a" and len(titles) == 2
    _resolve(a, c["id"], "mine")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    assert _titles(b) == ["title from b 東京"]


def test_resolve_offline_then_sync_when_the_server_is_back(
    tmp_path: Path, server: Server, pg_url: str, home: Path
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    port = str(urlsplit(server.url).port)
    server.stop()
    _resolve(a, c["id"][:6], "mine")
    _one_line_error(_duru("sync", "--db", str(a)), 1)
    again = Server(pg_url, home, "--port", port)
    again.start()
    try:
        assert again.url == server.url
        sync_all(a, b)
    finally:
        again.stop()
    assert snapshot(a) == snapshot(b)
    assert _titles(b) == ["title from b 東京"]
    assert [x["status"] for x in _listed(b, "--all")] == ["resolved"]


# -- more ---------------------------------------------------------------------------------


def test_both_devices_keeping_both_of_a_copyless_conflict_make_one_copy(
    tmp_path: Path, server: Server
) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    _resolve(a, c["id"], "theirs")  # the copy goes
    sync_all(a, b)
    _resolve(a, c["id"], "both")  # both change their minds at once
    _resolve(b, c["id"], "both")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    titles = _titles(a)
    assert len(titles) == 2, titles


def test_keep_both_after_the_copy_was_deleted_by_hand_does_not_name_a_missing_copy(
    tmp_path: Path, server: Server
) -> None:
    """Fixed: ``resolve`` took the record's copy id for a copy that exists; --keep both
    after the copy was purged said "conflicted copy X kept" of the deleted note and kept
    the aside version nowhere but in the closed record. Now it makes a new copy."""
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    with DeviceStore.open(a) as s:
        s.notes.trash(c["copy_id"])
        s.notes.purge(c["copy_id"])
    done = _resolve(a, c["id"], "both")
    [now] = _listed(a, "--all")
    notes = {n["id"]: n for n in snapshot(a)["notes"]}
    assert now["copy_id"] in notes, done.stdout
    assert notes[now["copy_id"]]["title"].startswith("title from b 東京 (conflicted copy")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)


def test_a_copy_id_set_by_the_server_cannot_make_resolve_purge_another_note(
    tmp_path: Path, server: Server
) -> None:
    """The server (or anything with a token) sets a revision's status and copy id; the
    copy id is no MAC'd row. Pointed at any note of the user, ``--keep theirs`` (or
    ``mine``) purges that note on every device."""
    a, b = device(tmp_path, "a"), device(tmp_path, "b")
    saved = sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    sync.login(b, server=server.url, user="ada", passphrase=PASS)
    with DeviceStore.open(a) as s:
        note = s.notes.create("original", body="body")
        diary = s.notes.create("diary", body="years of entries")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="title from a")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], title="title from b")
    sync_all(a, b)
    [c] = _listed(a)
    with SyncApi(server.url, token=saved.token) as api:
        api.resolve([{"id": c["id"], "status": "copied", "copy_id": diary["id"]}])
    sync_all(a, b)
    _resolve(b, c["id"][:8], "theirs")
    sync_all(a, b)
    for p in (a, b):
        assert "years of entries" in [n["body"] for n in snapshot(p)["notes"]]


def test_task_labels_edited_on_two_devices_are_not_dropped_unseen(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("groceries", body="x")
        task = s.tasks.create(note["id"], "buy milk", labels=["shop"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.tasks.edit(task["id"], labels=["shop", "urgent-from-a"])
    with DeviceStore.open(b) as s:
        s.tasks.edit(task["id"], labels=["shop", "weekly-from-b"])
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    for p in (a, b):
        everything = _everything(p)
        assert "urgent-from-a" in everything and "weekly-from-b" in everything


def test_crlf_note_in_three_scripts_edited_on_two_devices_merges_and_converges(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    body = "東京の会議\r\n\r\nשלום עולם\r\n\r\ncafe\u0301 🎉\r\n"
    with DeviceStore.open(a) as s:
        note = s.notes.create("多言語 notes", body=body)
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], body=body.replace("東京の会議", "東京の会議は延期"))
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body=body.replace("🎉", "🎉👨\u200d👩\u200d👧"))
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    [row] = snapshot(a)["notes"]
    assert (
        row["body"]
        == "東京の会議は延期\r\n\r\nשלום עולם\r\n\r\ncafe\u0301 🎉👨\u200d👩\u200d👧\r\n"
    )
    assert _listed(a) == []


def test_a_huge_one_line_note_edited_on_both_sides_keeps_both_whole(
    tmp_path: Path, server: Server
) -> None:
    """Past the merge's size limit nothing is diffed: the row keeps the server's text,
    the device's whole text becomes a conflicted copy."""
    a, b = two_devices(tmp_path, server)
    line = " ".join(f"語{i}" for i in range(12_000))  # 24,000 tokens, one line
    with DeviceStore.open(a) as s:
        note = s.notes.create("long", body=line)
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], body="A " + line)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body=line + " B")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    bodies = sorted(n["body"] for n in snapshot(a)["notes"])
    assert bodies == sorted(["A " + line, line + " B"])
    [c] = _listed(b)
    assert c["status"] == "copied"


def test_a_note_emptied_on_one_device_and_edited_on_the_other_loses_no_edit(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("plan", body="para one\n\npara two\n")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], body="para one, edited on a\n\npara two\n")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    bodies = [n["body"] for n in snapshot(a)["notes"]]
    assert any("para one, edited on a" in x for x in bodies)  # A's edit is in the row
    assert "" in bodies  # B's empty note is the conflicted copy
    assert [c["status"] for c in _listed(a)] == ["copied"]


def test_keep_mine_takes_my_side_of_the_clash_without_reverting_clean_merges(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("plan", body="first paragraph\n\nsecond paragraph\n")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="plan A", body="first paragraph, A\n\nsecond paragraph\n")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], title="plan B", body="first paragraph\n\nsecond paragraph, B\n")
    sync_all(a, b)
    [row] = [n for n in snapshot(b)["notes"] if n["id"] == note["id"]]
    assert row["body"] == "first paragraph, A\n\nsecond paragraph, B\n"  # merged cleanly
    [c] = _listed(b)
    _resolve(b, c["id"], "mine")  # B's title, please
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    for p in (a, b):
        assert "first paragraph, A" in _everything(p)  # A's clean edit is not gone


def test_keep_theirs_does_not_purge_a_copy_edited_since(tmp_path: Path, server: Server) -> None:
    a, b, note = clash(tmp_path, server)
    [c] = _listed(a)
    with DeviceStore.open(a) as s:
        s.notes.edit(c["copy_id"], body="my careful hand merge of both versions")
    _resolve(a, c["id"], "theirs")
    sync_all(a, b)
    for p in (a, b):
        assert "my careful hand merge" in _everything(p)
