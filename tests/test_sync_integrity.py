"""Row MACs: a server that edits plain columns or replays older rows is caught on pull.

The codec half runs without a server; the sync half runs real `duru serve` processes on
loopback, with the attacker writing straight into the server's PostgreSQL as its owner.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import test_sync
from test_sync import PASS, Server, device, sync_all, two_devices

from duru import sync
from duru.bridge import codec_for
from duru.crypto import KdfParams, new_account
from duru.crypto.row_mac import ROW_MAC_BYTES
from duru.errors import TamperedRow
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import FOLDER, NOTE, NOTE_FOLDER, TASK, complete_row, new_id, now_ms
from duru.sync.bulk import upload

# The `duru serve` fixtures of test_sync (a fixture is found by its name in the module).
home = test_sync.home
server = test_sync.server

KEYS, _ = new_account("row mac passphrase", str(uuid.uuid4()), KdfParams.interactive())
OTHER, _ = new_account("another passphrase", KEYS.user_id, KdfParams.interactive())


def _row(e: Any, **values: Any) -> dict[str, Any]:
    return complete_row(
        e, {"id": new_id(), **values} if "id" in e.field_names else values, now_ms()
    )


def _note(**changes: Any) -> dict[str, Any]:
    return _row(NOTE, **{"title": "東京 📝", "version": 7, **changes})


def _remote(row: dict[str, Any], e: Any = NOTE) -> dict[str, Any]:
    return codec_for(e).to_remote(row, KEYS, KEYS.user_id)


# -- the codec ---------------------------------------------------------------------


def test_a_row_comes_back_with_the_base_version_its_mac_vouches_for() -> None:
    row = _note(is_pinned=1)
    remote = _remote(row)
    assert len(remote["row_mac"]) == ROW_MAC_BYTES
    remote["version"] = 12  # the server's new version: not what the device vouches for
    assert codec_for(NOTE).row_base(remote, KEYS) == 7
    assert codec_for(NOTE).to_local(remote, KEYS) == {**row, "version": 12}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("is_pinned", True),
        ("deleted", True),
        ("note_type", "template"),
        ("created_at", "shift"),
        ("id", "another"),
    ],
)
def test_a_plain_column_changed_on_the_server_is_refused_naming_the_row(
    column: str, value: Any
) -> None:
    row = _note()
    remote = _remote(row)
    if value == "shift":
        value = remote[column].replace(year=2001)
    if value == "another":
        # Another row of the same user, with this row's columns and MAC.
        value = uuid.uuid4()
    remote[column] = value
    with pytest.raises(TamperedRow, match=f"note {remote['id']}: the row's MAC does not match"):
        codec_for(NOTE).to_local(remote, KEYS) if column != "id" else codec_for(NOTE).row_base(
            remote, KEYS
        )


def test_an_older_ciphertext_of_the_same_row_cannot_be_mixed_into_a_newer_row() -> None:
    row = _note(title="old title")
    old = _remote(row)
    new = _remote({**row, "title": "new title", "version": 9})
    # Both ciphertexts open for this row and field; only the MAC tells them apart.
    mixed = {**new, "title_enc": old["title_enc"]}
    with pytest.raises(TamperedRow, match="does not match"):
        codec_for(NOTE).to_local(mixed, KEYS)


def test_a_missing_or_foreign_mac_is_refused() -> None:
    remote = _remote(_note())
    for bad in (None, b"", b"\x00" * ROW_MAC_BYTES, remote["row_mac"][:-1]):
        with pytest.raises(TamperedRow, match="note"):
            codec_for(NOTE).to_local({**remote, "row_mac": bad}, KEYS)
    # The same user id, another master key (another account's devices) cannot vouch.
    forged = codec_for(NOTE).to_remote(_note(), OTHER, KEYS.user_id)
    with pytest.raises(TamperedRow):
        codec_for(NOTE).row_base(forged, KEYS)


def test_membership_and_task_status_are_covered_and_set_null_links_are_not() -> None:
    member = _row(NOTE_FOLDER, note_id=new_id(), folder_id=new_id())
    remote = _remote(member, NOTE_FOLDER)
    with pytest.raises(TamperedRow):
        codec_for(NOTE_FOLDER).to_local({**remote, "folder_id": uuid.uuid4()}, KEYS)
    task = _row(TASK, note_id=new_id(), content="x", reminder_id=new_id())
    remote = _remote(task, TASK)
    with pytest.raises(TamperedRow):
        codec_for(TASK).to_local({**remote, "status": "completed"}, KEYS)
    # The server clears reminder_id when the reminder is purged (ON DELETE SET NULL).
    back = codec_for(TASK).to_local({**remote, "reminder_id": None}, KEYS)
    assert back["reminder_id"] is None and back["content"] == "x"


def test_a_folder_parent_is_covered() -> None:
    folder = _row(FOLDER, name="a", parent_id=new_id())
    remote = _remote(folder, FOLDER)
    with pytest.raises(TamperedRow):
        codec_for(FOLDER).to_local({**remote, "parent_id": None}, KEYS)


# -- through `duru serve` ------------------------------------------------------------


def _owner(url: str, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The attacker: whoever controls the server, past row level security (``url`` is
    ``pg_inspect_url``, the superuser on the test's database)."""
    with psycopg.connect(url, autocommit=True) as owner:
        cur = owner.execute(query, params)
        return cur.fetchall() if cur.description else []


def _bump(pg_url: str, table: str, row_id: str) -> None:
    """Give the row a new change sequence number, as a server that wants it pulled would."""
    _owner(
        pg_url,
        f"UPDATE {table} SET change_seq = (SELECT max(last_change_seq) + 1 FROM accounts),"
        " version = version + 100 WHERE id = %s",
        (uuid.UUID(row_id),),
    )
    _owner(pg_url, "UPDATE accounts SET last_change_seq = last_change_seq + 1", ())


def _duru(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_a_flag_flipped_on_the_server_is_refused_by_duru_sync_naming_the_row(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("private 日記", body="not pinned")
        s.notes.create("another")
    sync_all(a, b)
    _owner(
        pg_inspect_url, "UPDATE notes SET is_pinned = true WHERE id = %s", (uuid.UUID(note["id"]),)
    )
    _bump(pg_inspect_url, "notes", note["id"])
    with DeviceStore.open(a) as s:
        fine = s.notes.create("written after")
    sync.sync(a)
    done = _duru("sync", "--db", str(b))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"notes {note['id']}: TamperedRow" in done.stderr
    assert "MAC does not match" in done.stderr
    with Database.open(b) as db:
        kept = db.find(NOTE, note["id"])
        assert kept is not None and kept["is_pinned"] == 0  # nothing changed here
        assert db.find(NOTE, fine["id"]) is not None  # the rest of the page synced
        [q] = db.rows("SELECT source_key, reason FROM quarantine")
    assert q["source_key"] == note["id"] and "TamperedRow" in q["reason"]
    assert _duru("sync", "--db", str(b)).returncode == 0  # not stuck on it


def test_an_older_version_replayed_by_the_server_is_refused(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("first title", body="first body")
    sync_all(a, b)
    columns = "title_enc, props_enc, is_pinned, updated_at, row_mac"
    [old] = _owner(
        pg_inspect_url, f"SELECT {columns} FROM notes WHERE id = %s", (uuid.UUID(note["id"]),)
    )
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="second title")
        s.notes.pin(note["id"])
    sync_all(a, b)
    # The server puts the first version back (its MAC is genuine) and makes it pullable.
    _owner(
        pg_inspect_url,
        "UPDATE notes SET title_enc = %s, props_enc = %s, is_pinned = %s, updated_at = %s,"
        " row_mac = %s WHERE id = %s",
        (*old, uuid.UUID(note["id"])),
    )
    _bump(pg_inspect_url, "notes", note["id"])
    report = sync.sync(b)
    assert report.quarantined == 1
    with Database.open(b) as db:
        [q] = db.rows("SELECT source_key, reason FROM quarantine")
        kept = db.find(NOTE, note["id"])
    assert q["source_key"] == note["id"] and q["reason"].startswith("ReplayedRow: ")
    assert kept is not None and kept["title"] == "second title" and kept["is_pinned"] == 1


def test_a_row_the_server_only_restamped_is_not_a_replay(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("same content")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="edited once")
    sync_all(a, b)
    _bump(pg_inspect_url, "notes", note["id"])  # a new version, the same content and MAC
    report = sync.sync(b)
    assert report.quarantined == 0 and report.pulled >= 1
    with Database.open(b) as db:
        assert db.find(NOTE, note["id"])["title"] == "edited once"  # type: ignore[index]


def test_a_loop_closing_move_is_written_again_under_the_servers_parent_with_its_rename(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        x = s.folders.create("x")
        y = s.folders.create("y")
    sync_all(a, b)
    with DeviceStore.open(a) as s:  # a: y under x
        s.folders.move(y["id"], x["id"])
    with DeviceStore.open(b) as s:  # b: x under y, and renamed
        s.folders.move(x["id"], y["id"])
        s.folders.rename(x["id"], "x renamed on b")
    sync.sync(a)
    report = sync.sync(b)
    assert report.quarantined == 0
    sync_all(a, b)
    trees = []
    for p in (a, b):
        with Database.open(p) as db:
            trees.append(db.rows("SELECT id, name, parent_id FROM folders ORDER BY name"))
    assert trees[0] == trees[1]
    by_id = {r["id"]: r for r in trees[0]}
    assert by_id[y["id"]]["parent_id"] == x["id"]  # a's move stands: no loop
    assert by_id[x["id"]]["parent_id"] is None
    assert by_id[x["id"]]["name"] == "x renamed on b"  # b's rename survived its move
    with Database.open(b) as db:
        assert db.rows("SELECT count(*) AS n FROM outbox")[0]["n"] == 0


def test_rows_uploaded_in_bulk_carry_macs_that_a_new_device_accepts(
    tmp_path: Path, server: Server, pg_url: str, pg_inspect_url: str
) -> None:
    seeded = device(tmp_path, "seeded")
    with DeviceStore.open(seeded) as s:
        folder = s.folders.create("フォルダ")
        for i in range(30):
            note = s.notes.create(f"note {i} ✓", body="body " * i)
            s.tags.add(note["id"], "tag")
            s.folders.file_note(note["id"], folder["id"])
    upload(seeded, server_url=pg_url, passphrase=PASS, user="bulk", kdf=KdfParams.interactive())
    macs = _owner(
        pg_inspect_url, "SELECT count(*) FROM notes WHERE length(row_mac) = %s", (ROW_MAC_BYTES,)
    )
    assert macs == [(30,)]
    fresh = device(tmp_path, "fresh")
    sync.login(fresh, server=server.url, user="bulk", passphrase=PASS)
    report = sync.sync(fresh)
    assert report.quarantined == 0 and report.pulled == 30 + 30 + 30 + 1
