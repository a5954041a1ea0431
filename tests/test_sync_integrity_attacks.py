"""Row MACs under attack: a hostile server operator edits PostgreSQL as the owner.

Each attack runs against a real `duru serve` and real devices. The attacker changes rows
straight in the server's database and bumps their change sequence numbers so devices pull
them. Tests that pass document an attack the row MACs stop (or a legitimate flow they do
not refuse: a false alarm stops a user's data from syncing). A test marked ``xfail``
names a hole left open (strict: closing it shows). Tests whose docstring says "was a
gap" failed on the code they were written against, and were fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import test_sync
from test_sync import KDF, PASS, Server, device, snapshot, sync_all, two_devices
from test_sync_lost_answers import lose_a_push

from duru import sync
from duru.bridge import codec_for
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import ENTITIES, Entity, Kind, entity
from duru.remote.layout import mac_columns, server_table
from duru.server import purge_tombstones
from duru.sync.bulk import download, upload
from duru.sync.credentials import load
from duru.sync.http import SyncApi
from duru.sync.outbox import entries, pending
from duru.sync.wire import decode_row, encode_row

home = test_sync.home
server = test_sync.server


@pytest.fixture
def attacker(pg_inspect_url: str) -> str:
    """The server's database as its owner would have it: past row level security."""
    return pg_inspect_url


# -- the attacker's tools ------------------------------------------------------------


def _sql(pg_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as owner:
        cur = owner.execute(query, params)
        return cur.fetchall() if cur.description else []


def _bump(pg_url: str, table: str, key: str, row_id: Any) -> None:
    """Give the row a new version and change sequence number, so every device pulls it."""
    _sql(
        pg_url,
        f"UPDATE {table} SET change_seq = (SELECT max(last_change_seq) + 1 FROM accounts),"
        f" version = (SELECT max(last_change_seq) + 1 FROM accounts) WHERE {key} = %s",
        (uuid.UUID(str(row_id)),),
    )
    _sql(pg_url, "UPDATE accounts SET last_change_seq = last_change_seq + 1")


def _server_row(pg_url: str, table: str, key: str, row_id: Any) -> dict[str, Any]:
    with psycopg.connect(pg_url, autocommit=True) as owner:
        cur = owner.execute(f"SELECT * FROM {table} WHERE {key} = %s", (uuid.UUID(str(row_id)),))
        names = [d.name for d in cur.description or ()]
        found = cur.fetchone()
    assert found is not None, f"{table} {row_id} is not on the server"
    return dict(zip(names, found, strict=True))


def _put(pg_url: str, table: str, key: str, row_id: Any, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = %s" for c in values)
    _sql(
        pg_url,
        f"UPDATE {table} SET {sets} WHERE {key} = %s",
        (*values.values(), uuid.UUID(str(row_id))),
    )


def _local(path: Path, e: Entity, key: str) -> dict[str, Any] | None:
    with Database.open(path) as db:
        return db.find(e, key)


def _quarantine(path: Path) -> list[dict[str, Any]]:
    with Database.open(path) as db:
        return db.rows("SELECT source_table, source_key, reason FROM quarantine ORDER BY id")


def _duru(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DURU_PASSPHRASE": PASS}
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _world(path: Path) -> dict[str, dict[str, Any]]:
    """Two rows of every entity (the second to point at or swap with), CJK and emoji text."""
    with DeviceStore.open(path) as s:
        n1 = s.notes.create("東京の日記 📝", body="本文 ✓\nline two", tags=["仕事", "🏷"])
        n2 = s.notes.create("second note ü", body="other body")
        f1 = s.folders.create("フォルダ 📁")
        f2 = s.folders.create("child", parent_id=f1["id"])
        s.folders.file_note(n1["id"], f2["id"])
        s.folders.file_note(n2["id"], f1["id"])
        link = s.links.add(n1["id"], "second note ü")
        link2 = s.links.add(n2["id"], "東京の日記 📝")
        r1 = s.reminders.create(n1["id"], remind_at=4_102_444_800_000, title="⏰ 起きて")
        r2 = s.reminders.create(n2["id"], remind_at=4_102_444_900_000)
        t1 = s.tasks.create(n1["id"], "買い物 🛒", due_date=4_102_444_800_000)
        t2 = s.tasks.create(n1["id"], "sub", parent_task_id=t1["id"])
        s.tasks.edit(t1["id"], reminder_id=r1["id"])
        tp1 = s.templates.create("テンプレ", "body {{x}}")
        tp2 = s.templates.create("other template")
        ss1 = s.saved_searches.create("検索", "tag:仕事")
        ss2 = s.saved_searches.create("other search", "x")
        a1 = s.attachments.add(n1["id"], "写真.jpg", size_bytes=1234, sha256="a" * 64)
        a2 = s.attachments.add(n2["id"], "b.pdf", size_bytes=9)
        tags = s.db.rows("SELECT id FROM note_tags ORDER BY id")
    return {
        "note": {"rows": [n1["id"], n2["id"]]},
        "folder": {"rows": [f2["id"], f1["id"]]},
        "note_folder": {"rows": [n1["id"], n2["id"]]},
        "note_tag": {"rows": [tags[0]["id"], tags[1]["id"]]},
        "note_link": {"rows": [link["id"], link2["id"]]},
        "reminder": {"rows": [r1["id"], r2["id"]]},
        "task": {"rows": [t2["id"], t1["id"]]},
        "template": {"rows": [tp1["id"], tp2["id"]]},
        "saved_search": {"rows": [ss1["id"], ss2["id"]]},
        "attachment": {"rows": [a1["id"], a2["id"]]},
    }


def _changed(e: Entity, column: str, pg_type: str, value: Any, world: dict[str, Any]) -> Any:
    """Another value of the column's type, that the server's constraints accept."""
    if pg_type == "boolean":
        return not value
    if pg_type == "bigint":
        return (value or 0) + 1
    if pg_type == "timestamp with time zone":
        return value - timedelta(seconds=1) if value is not None else value
    if pg_type == "uuid":
        f = e.field(column)
        other = world[f.references or ""]["rows"] if f.references else []
        choices = [uuid.UUID(o) for o in other if uuid.UUID(o) != value]
        return choices[0] if choices else None
    if pg_type == "text":
        f = e.field(column)
        if f.kind is Kind.ENUM:
            return next(name for name, _ in f.enum.members if name != value)
        return (value or "") + "x"
    raise AssertionError(f"no tampering for {pg_type}")


# -- every plain column of every entity ------------------------------------------------


def test_every_plain_column_of_every_entity_changed_on_the_server_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    world = _world(a)
    sync_all(a, b)
    tried: list[str] = []
    for e in ENTITIES:
        row_id = world[e.name]["rows"][0]
        for col in mac_columns(e):
            if col.type == "bytea" or col.name == e.key:
                continue  # ciphertexts and keys: the tests below
            held = _local(b, e, row_id)
            old = _server_row(pg_url, e.table, e.key, row_id)[col.name]
            new = _changed(e, col.name, col.type, old, world)
            if new is None or new == old:
                continue  # e.g. a timestamp that is NULL here
            before = len(_quarantine(b))
            _put(pg_url, e.table, e.key, row_id, {col.name: new})
            _bump(pg_url, e.table, e.key, row_id)
            report = sync.sync(b)
            where = f"{e.name}.{col.name}"
            assert report.quarantined == 1, where
            q = _quarantine(b)[before:]
            assert [(r["source_table"], r["source_key"]) for r in q] == [(e.table, row_id)], where
            assert q[0]["reason"].startswith("TamperedRow: "), (where, q[0]["reason"])
            assert _local(b, e, row_id) == held, where  # the device keeps its own copy
            # The operator puts the value back, at yet another version: a restamp.
            _put(pg_url, e.table, e.key, row_id, {col.name: old})
            _bump(pg_url, e.table, e.key, row_id)
            assert sync.sync(b).quarantined == 0, where
            tried.append(where)
    # Every entity had columns tried (not a loop that skipped everything).
    assert {t.split(".")[0] for t in tried} == {e.name for e in ENTITIES}
    assert len(tried) >= 60, tried
    sync.sync(a)
    assert {**snapshot(a), "quarantine": []} == {**snapshot(b), "quarantine": []}


# -- swaps: rows, MACs, users, ciphertexts ---------------------------------------------


def _covered(e: Entity) -> list[str]:
    return [c.name for c in mac_columns(e) if c.name != e.key]


def test_row_macs_or_whole_rows_swapped_between_rows_are_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    world = _world(a)
    sync_all(a, b)
    for e in ENTITIES:
        first, second = world[e.name]["rows"]
        one = _server_row(pg_url, e.table, e.key, first)
        two = _server_row(pg_url, e.table, e.key, second)
        held = _local(b, e, first)
        # The MAC of another row of the same entity and user.
        _put(pg_url, e.table, e.key, first, {"row_mac": two["row_mac"]})
        _bump(pg_url, e.table, e.key, first)
        assert sync.sync(b).quarantined == 1, e.name
        # Every plain column of the other row with its MAC (the ciphertexts stay, they
        # are bound to their row): only the row id differs from a genuine row.
        plain = [c for c in _covered(e) if not c.endswith("_enc") and c != "tag_hmac"]
        _put(pg_url, e.table, e.key, first, {c: two[c] for c in [*plain, "row_mac"]})
        _bump(pg_url, e.table, e.key, first)
        assert sync.sync(b).quarantined == 1, e.name
        assert _local(b, e, first) == held, e.name
        _put(pg_url, e.table, e.key, first, {c: one[c] for c in [*_covered(e), "row_mac"]})
        _bump(pg_url, e.table, e.key, first)
        assert sync.sync(b).quarantined == 0, e.name
    assert all(q["reason"].startswith("TamperedRow: ") for q in _quarantine(b))


def test_another_users_genuine_row_moved_into_this_account_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    mallory = device(tmp_path, "mallory")
    sync.register(mallory, server=server.url, user="mallory", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(mallory) as s:
        planted = s.notes.create("pay mallory", body="to IBAN ...")
    sync.sync(mallory)
    [(ada,)] = _sql(pg_url, "SELECT user_id FROM accounts WHERE name = 'ada'")
    _sql(pg_url, "UPDATE notes SET user_id = %s WHERE id = %s", (ada, uuid.UUID(planted["id"])))
    _bump(pg_url, "notes", "id", planted["id"])
    report = sync.sync(b)
    assert report.quarantined == 1
    assert _local(b, entity("note"), planted["id"]) is None
    assert _quarantine(b)[0]["source_key"] == planted["id"]


def test_an_older_ciphertext_or_older_mac_of_the_same_row_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("v1 title", body="v1 body")
    sync_all(a, b)
    old = _server_row(pg_url, "notes", "id", note["id"])
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="v2 title", body="v2 body")
    sync_all(a, b)
    new = _server_row(pg_url, "notes", "id", note["id"])
    for mixed in (
        {"props_enc": old["props_enc"]},
        {"title_enc": old["title_enc"]},
        {"row_mac": old["row_mac"]},
    ):
        _put(pg_url, "notes", "id", note["id"], mixed)
        _bump(pg_url, "notes", "id", note["id"])
        assert sync.sync(b).quarantined == 1, mixed
        assert _local(b, entity("note"), note["id"])["title"] == "v2 title"  # type: ignore[index]
        _put(pg_url, "notes", "id", note["id"], {c: new[c] for c in mixed})


def test_version_and_change_seq_alone_are_not_covered_and_are_accepted(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    world = _world(a)
    sync_all(a, b)
    for e in ENTITIES:
        for row_id in world[e.name]["rows"]:
            _bump(pg_url, e.table, e.key, row_id)
    report = sync.sync(b)
    assert report.quarantined == 0 and report.pulled >= 20
    sync.sync(a)
    assert snapshot(a) == snapshot(b)


# -- replays ------------------------------------------------------------------------------


def _two_versions(
    tmp_path: Path, server: Server, pg_url: str
) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """Devices a and b, a note, its first version's server row; both devices hold v2."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("first title", body="first body")
    sync_all(a, b)
    old = _server_row(pg_url, "notes", "id", note["id"])
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="second title")
        s.notes.pin(note["id"])
    sync_all(a, b)
    return a, b, note, old


def _replay(pg_url: str, note_id: str, old: dict[str, Any]) -> None:
    _put(
        pg_url, "notes", "id", note_id, {c: old[c] for c in [*_covered(entity("note")), "row_mac"]}
    )
    _bump(pg_url, "notes", "id", note_id)


def test_a_replay_during_a_full_resync_is_refused_and_the_good_copy_stays(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b, note, old = _two_versions(tmp_path, server, pg_url)
    _replay(pg_url, note["id"], old)
    # The horizon passes the device's cursor: its next pull is a full resync (410).
    _sql(pg_url, "UPDATE accounts SET horizon_seq = last_change_seq")
    report = sync.sync(b)
    assert report.resynced and report.quarantined == 1
    kept = _local(b, entity("note"), note["id"])
    assert kept is not None and kept["title"] == "second title" and kept["is_pinned"] == 1
    assert _quarantine(b)[0]["reason"].startswith("ReplayedRow: ")


def test_a_replay_onto_a_row_with_unpushed_edits_is_refused_and_reported(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (duru/sync/client.py ``_pull``): the edit pushed against the replayed row
    conflicts, its merge round pulls again, and that second pull's count overwrote the
    first one's: `duru sync` said nothing and exited 0. The counts now add up."""
    pg_url = attacker
    a, b, note, old = _two_versions(tmp_path, server, pg_url)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="written on b, not pushed yet")
    _replay(pg_url, note["id"], old)
    report = sync.sync(b)
    refused = _quarantine(b)
    assert refused and all(q["reason"].startswith("ReplayedRow: ") for q in refused)
    kept = _local(b, entity("note"), note["id"])
    assert kept is not None and kept["body"] == "written on b, not pushed yet"
    assert kept["title"] == "second title"  # not the replayed first title
    assert report.quarantined >= 1


def test_an_edit_pushed_against_a_replayed_row_is_not_taken_as_applied(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (duru/server/push.py ``run``, now answered "conflict" again with its
    revision): the stale push becomes a conflict; the
    pull refuses the replay, so the op stays and the merge round sends it again; the
    server answers a re-sent op that conflicted "duplicate" with the version of its
    (replayed) row, and the device marks its edit as applied at that version. From then
    on the device holds its edit at the replayed row's version (a pull skips a version it
    holds), the server and every other device the replayed row: silent divergence."""
    pg_url = attacker
    a, b, note, old = _two_versions(tmp_path, server, pg_url)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="written on b, not pushed yet")
    _replay(pg_url, note["id"], old)
    sync.sync(b)
    on_server = _server_row(pg_url, "notes", "id", note["id"])
    kept = _local(b, entity("note"), note["id"])
    with Database.open(b) as db:
        waiting = db.rows("SELECT count(*) AS n FROM outbox")[0]["n"]
    assert kept is not None
    # Either the edit still waits to be pushed, or the device does not claim the
    # server's (replayed) version as the one holding its edit.
    assert waiting > 0 or kept["version"] != on_server["version"]


def test_a_replay_to_a_device_that_never_saw_the_newer_version_is_taken(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    """Documented limit (README): nothing on that device knows a newer version exists."""
    a, b, note, old = _two_versions(tmp_path, server, pg_url)
    _replay(pg_url, note["id"], old)
    fresh = device(tmp_path, "fresh")
    sync.login(fresh, server=server.url, user="ada", passphrase=PASS)
    assert sync.sync(fresh).quarantined == 0
    assert _local(fresh, entity("note"), note["id"])["title"] == "first title"  # type: ignore[index]


def _revive(pg_url: str, table: str, key: str, row_id: Any) -> None:
    """The attacker clears a tombstone: the row as it was before its delete, old MAC and all."""
    _sql(
        pg_url, f"UPDATE {table} SET deleted_at = NULL WHERE {key} = %s", (uuid.UUID(str(row_id)),)
    )
    _bump(pg_url, table, key, row_id)


def _refused_as_revived(path: Path, table: str, row_id: str) -> None:
    q = [r for r in _quarantine(path) if (r["source_table"], r["source_key"]) == (table, row_id)]
    assert len(q) == 1, (path.name, _quarantine(path))
    assert q[0]["reason"].startswith("ReplayedRow: "), q[0]["reason"]
    assert "deleted at version" in q[0]["reason"], q[0]["reason"]


def test_a_row_deleted_on_every_device_brought_back_by_the_server_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (an xfail, "..._is_taken"): a device kept nothing of a row once it was
    deleted, so the server could bring back a removed tag, folder membership or purged
    note with its genuine old row. Devices now keep the version of each delete they
    make or pull (``sync_tombstones``) and refuse an older row for that key."""
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("keep", tags=["secret-project"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.tags.remove(note["id"], "secret-project")
    sync_all(a, b)
    [(tag_id,)] = _sql(pg_url, "SELECT id FROM note_tags WHERE deleted_at IS NOT NULL")
    _revive(pg_url, "note_tags", "id", str(tag_id))
    for p in (a, b):  # the device that removed it, and the one that pulled the tombstone
        report = sync.sync(p)
        with DeviceStore.open(p) as s:
            assert s.tags.list_for(note["id"]) == [], p.name
        assert report.quarantined == 1, p.name
        _refused_as_revived(p, "note_tags", str(tag_id))
    done = _duru("sync", "--db", str(b), "--json")  # nothing new: exit 0 until the next
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_purged_note_brought_back_by_the_server_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("秘密 to forget 🗑", body="gone for good", tags=["t"])
        s.tasks.create(note["id"], "its task")
        folder = s.folders.create("f")
        s.folders.file_note(note["id"], folder["id"])
    sync_all(a, b)
    with DeviceStore.open(b) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    sync_all(b, a)
    # Every row of the note comes back: the note, its tag, task and filing.
    revived = {
        table: [
            str(r[0])
            for r in _sql(pg_url, f"SELECT {key} FROM {table} WHERE deleted_at IS NOT NULL")
        ]
        for table, key in (
            ("notes", "id"),
            ("note_tags", "id"),
            ("tasks", "id"),
            ("note_folders", "note_id"),
        )
    }
    assert all(len(ids) == 1 for ids in revived.values()), revived
    for table, ids in revived.items():
        _revive(pg_url, table, "note_id" if table == "note_folders" else "id", ids[0])
    for p in (a, b):
        report = sync.sync(p)
        assert _local(p, entity("note"), note["id"]) is None, p.name
        assert report.quarantined == 4, (p.name, _quarantine(p))
        for table, ids in revived.items():
            _refused_as_revived(p, table, ids[0])


def test_a_folder_membership_brought_back_by_the_server_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("filed")
        folder = s.folders.create("Private 📁")
        s.folders.file_note(note["id"], folder["id"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.unfile(note["id"])
    sync_all(a, b)
    _revive(pg_url, "note_folders", "note_id", note["id"])
    for p in (a, b):
        report = sync.sync(p)
        assert _local(p, entity("note_folder"), note["id"]) is None, p.name
        assert report.quarantined == 1, p.name
        _refused_as_revived(p, "note_folders", note["id"])


@pytest.mark.parametrize("delete_answer", ["received", "lost"])
def test_a_losing_write_of_a_delete_served_as_the_live_row_is_refused(
    tmp_path: Path, server: Server, attacker: str, home: Path, delete_answer: str
) -> None:
    """An edit that lost to a delete stays on the server as a conflict revision, with a
    genuine MAC based on the version deleted. Its device never comes back; served as
    the live row, it is refused by the device that deleted the row: that device keeps
    the tombstone's version (from its push's answer, and the pull), newer than the
    version it deleted, which that MAC's base equals.

    Was a gap with the delete's answer lost: pushed again, it is answered ``duplicate``,
    and that device kept only the version it deleted, so it took the served row back."""
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("raced", body="v1")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    if delete_answer == "lost":
        lose_a_push(a, home)
    else:
        sync.sync(a)
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="the stale edit")
    with Database.open(b) as db:  # b pushes, and is never heard of again
        saved = load(home, str(db.meta("device_id")))
        with SyncApi(server.url, token=saved.token) as api:
            [answer], _ = api.push("b", [e for _, e in entries(db, pending(db), saved.keys())])
    assert answer.outcome == "conflict"
    [(wire,)] = _sql(pg_url, "SELECT row FROM conflicts WHERE row IS NOT NULL")
    stale = decode_row(server_table(entity("note")), wire, codec_for(entity("note")).columns)
    _put(
        pg_url,
        "notes",
        "id",
        note["id"],
        {c: stale[c] for c in [*_covered(entity("note")), "row_mac"]},
    )
    _revive(pg_url, "notes", "id", note["id"])
    report = sync.sync(a)
    assert _local(a, entity("note"), note["id"]) is None
    assert report.quarantined == 1
    _refused_as_revived(a, "notes", note["id"])


# -- conflict revisions ---------------------------------------------------------------


def _revision(tmp_path: Path, server: Server) -> tuple[Path, Path, Path, dict[str, Any]]:
    """a, b and c; a note whose edit on b lost to a's and sits in a conflict revision."""
    a, b = two_devices(tmp_path, server)
    c = device(tmp_path, "c")
    sync.login(c, server=server.url, user="ada", passphrase=PASS)
    with DeviceStore.open(a) as s:
        note = s.notes.create("shared", body="line one\\nline two")
    sync_all(a, b, c)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="title from a")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], title="title from b")
    sync.sync(a)
    sync.sync(b)
    return a, b, c, note


def test_a_losing_row_tampered_inside_a_conflict_revision_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    pg_url = attacker
    a, b, c, note = _revision(tmp_path, server)
    [(rev_id, row)] = _sql(pg_url, "SELECT id, row FROM conflicts WHERE row IS NOT NULL")
    row["is_pinned"] = True
    _sql(
        pg_url,
        "UPDATE conflicts SET row = %s, change_seq = (SELECT last_change_seq + 1 FROM accounts)"
        " WHERE id = %s",
        (psycopg.types.json.Jsonb(row), rev_id),
    )
    _sql(pg_url, "UPDATE accounts SET last_change_seq = last_change_seq + 1")
    report = sync.sync(c)
    assert report.quarantined == 1
    [q] = _quarantine(c)
    assert q["reason"].startswith("TamperedRow: ") and q["source_key"] == note["id"]


def test_a_conflict_revision_carrying_another_rows_genuine_row_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (duru/sync/inbox.py ``_open``, now ``_same_row``): the losing row's MAC
    was checked, but not that it is a row of the revision's ``row_id``. The server could
    file note X's genuine row as the losing side of a conflict on note Y, and
    `duru conflicts resolve --keep mine` would write X's title and body into Y."""
    pg_url = attacker
    a, b, c, note = _revision(tmp_path, server)
    with DeviceStore.open(a) as s:
        other = s.notes.create("unrelated 秘密", body="someone else's text")
    sync.sync(a)  # c has not pulled the revision yet
    wire = _sql(pg_url, "SELECT row FROM conflicts WHERE row IS NOT NULL")[0][0]
    x = _server_row(pg_url, "notes", "id", other["id"])
    x = {k: v for k, v in x.items() if k not in ("change_seq", "deleted_at")}
    planted = {**wire, **encode_row(server_table(entity("note")), x)}
    assert planted != wire and planted["id"] == other["id"]
    _sql(
        pg_url,
        "UPDATE conflicts SET row = %s, change_seq = (SELECT last_change_seq + 1 FROM accounts)",
        (psycopg.types.json.Jsonb(planted),),
    )
    _sql(pg_url, "UPDATE accounts SET last_change_seq = last_change_seq + 1")
    report = sync.sync(c)
    with Database.open(c) as db:
        kept = db.rows("SELECT row_json FROM sync_conflicts WHERE row_json IS NOT NULL")
    taken = [json.loads(r["row_json"]) for r in kept]
    assert report.quarantined == 1 or all(t["id"] == note["id"] for t in taken), taken


def test_a_set_null_link_pointed_at_another_row_by_the_server_is_refused(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (duru/crypto/row_mac.py): note_links.target_id and tasks.reminder_id were
    left out of the MAC so the server may clear them; it could as well point them at any
    other row of the user. Now a second tag covers the row with the link NULL: clearing
    passes, pointing elsewhere does not."""
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        source = s.notes.create("source")
        target = s.notes.create("target")
        decoy = s.notes.create("decoy")
        link = s.links.add(source["id"], "target")
    sync_all(a, b)
    _put(pg_url, "note_links", "id", link["id"], {"target_id": uuid.UUID(decoy["id"])})
    _bump(pg_url, "note_links", "id", link["id"])
    report = sync.sync(b)
    held = _local(b, entity("note_link"), link["id"])
    assert held is not None
    assert held["target_id"] == target["id"] or report.quarantined == 1, held


# -- false alarms: legitimate flows must not be refused ---------------------------------


def test_a_link_unlinked_by_the_servers_set_null_is_not_a_replay(
    tmp_path: Path, server: Server
) -> None:
    """The server clears note_links.target_id (ON DELETE SET NULL) when the target note
    is deleted, at a new version, under the link's old MAC. A device that held the link
    with its target must take it: the tombstone and the unlink come in one page."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        source = s.notes.create("source")
        target = s.notes.create("target")
        link = s.links.add(source["id"], "target")
        reminder = s.reminders.create(source["id"], remind_at=4_102_444_800_000)
        task = s.tasks.create(source["id"], "call", reminder_id=reminder["id"])
    sync_all(a, b)
    assert _local(b, entity("note_link"), link["id"])["target_id"] == target["id"]  # type: ignore[index]
    with DeviceStore.open(a) as s:
        s.notes.trash(target["id"])
        s.notes.purge(target["id"])
        s.reminders.delete(reminder["id"])
    sync.sync(a)
    report = sync.sync(b)
    assert _quarantine(b) == [] and report.quarantined == 0
    assert _local(b, entity("note_link"), link["id"])["target_id"] is None  # type: ignore[index]
    assert _local(b, entity("task"), task["id"])["reminder_id"] is None  # type: ignore[index]
    sync_all(a, b)
    assert {**snapshot(a), "quarantine": []} == {**snapshot(b), "quarantine": []}


def test_legitimate_flows_raise_no_alarm(tmp_path: Path, server: Server) -> None:
    """Merges, conflicted copies, revived parents, tombstones, loop moves, three devices
    on one note, a device offline for long, a resync: nothing is refused anywhere."""
    a, b = two_devices(tmp_path, server)
    c = device(tmp_path, "c")
    sync.login(c, server=server.url, user="ada", passphrase=PASS)
    with DeviceStore.open(a) as s:
        note = s.notes.create("三台 📱", body="one\\ntwo\\nthree\\nfour")
        x = s.folders.create("x")
        y = s.folders.create("y")
        doomed = s.folders.create("doomed")
        s.tasks.create(note["id"], "task ✓")
    sync_all(a, b, c)
    # c goes offline for the rest: it comes back at the end.
    for i in range(3):  # three devices edit the same note, merge and clash
        with DeviceStore.open(a) as s:
            s.notes.edit(note["id"], body=f"one a{i}\\ntwo\\nthree\\nfour")
        with DeviceStore.open(b) as s:
            s.notes.edit(note["id"], body=f"one b{i}\\ntwo\\nthree\\nfour b{i}")
            s.notes.pin(note["id"]) if i % 2 == 0 else s.notes.unpin(note["id"])
        sync_all(a, b)
    with DeviceStore.open(a) as s:  # a loop-closing move: "adjusted"
        s.folders.move(y["id"], x["id"])
        s.folders.delete(doomed["id"])
    with DeviceStore.open(b) as s:
        s.folders.move(x["id"], y["id"])
        s.folders.file_note(note["id"], doomed["id"])  # revives the folder a deleted
    sync_all(a, b)
    with DeviceStore.open(c) as s:  # offline edits on c, against versions long gone
        s.notes.edit(note["id"], title="c was offline 🌙")
        s.folders.rename(x["id"], "x from c")
    sync_all(c, a, b, c)
    for p in (a, b, c):
        assert _quarantine(p) == [], p.name
    # Every device, then one of them in a full resync: still nothing refused.
    with Database.open(c) as db:
        db.set_meta("sync_cursor", "0")
    _ = sync.sync(c)
    assert _quarantine(c) == []
    snaps = [{**snapshot(p), "quarantine": []} for p in (a, b, c)]
    assert snaps[0] == snaps[1] == snaps[2]


def _no_alarm_anywhere(*paths: Path) -> None:
    for p in paths:
        assert _quarantine(p) == [], (p.name, _quarantine(p))
    snaps = [{**snapshot(p), "quarantine": []} for p in paths]
    assert all(s == snaps[0] for s in snaps[1:])


def test_every_legitimate_way_a_deleted_row_comes_back_raises_no_alarm(
    tmp_path: Path, server: Server
) -> None:
    """Each way a row deleted on one device lives again, seen by devices that saw it
    deleted (they keep its tombstone): an edit made against the delete (pushed after it,
    and before it), a child written under a folder chain or a note deleted elsewhere,
    a note filed again, on the same device and on another. Nothing is refused, and the
    row is back everywhere."""
    a, b = two_devices(tmp_path, server)
    c = device(tmp_path, "c")
    sync.login(c, server=server.url, user="ada", passphrase=PASS)
    with DeviceStore.open(a) as s:
        edited_late = s.notes.create("edited after its purge", body="v1")
        edited_early = s.notes.create("edited before its purge", body="v1")
        parent = s.notes.create("a task comes under it")
        filed = s.notes.create("filed, unfiled, filed 📎")
        homeless = s.notes.create("filed under two folders deleted elsewhere")
        top = s.folders.create("top")
        sub = s.folders.create("sub", parent_id=top["id"])
        s.folders.file_note(filed["id"], top["id"])
    sync_all(a, b, c)
    # Deletes on b; a writes against them without having seen them.
    with DeviceStore.open(b) as s:
        for n in (edited_late, parent):
            s.notes.trash(n["id"])
            s.notes.purge(n["id"])
        s.folders.delete(sub["id"])
        s.folders.delete(top["id"])
    sync.sync(b)
    with DeviceStore.open(a) as s:
        s.notes.edit(edited_late["id"], body="edited on a, kept over the purge")
        s.tasks.create(parent["id"], "a task ✓")
        s.folders.file_note(homeless["id"], sub["id"])
        s.notes.edit(edited_early["id"], body="edited on a first")
    sync.sync(a)
    with DeviceStore.open(b) as s:  # a purge against the edit a pushed first
        s.notes.trash(edited_early["id"])
        s.notes.purge(edited_early["id"])
    sync_all(b, a, c)
    _no_alarm_anywhere(a, b, c)
    snap = snapshot(c)
    assert {n["body"] for n in snap["notes"]} >= {
        "edited on a, kept over the purge",
        "edited on a first",
    }
    assert {f["name"] for f in snap["folders"]} == {"top", "sub"}
    assert [(r["note_id"], r["folder_id"]) for r in snap["note_folders"]] == [
        (homeless["id"], sub["id"])
    ]
    assert [t["content"] for t in snap["tasks"]] == ["a task ✓"]
    # Unfiled and filed again: on the device that unfiled it, then on another.
    for first, second in ((a, a), (a, b)):
        with DeviceStore.open(first) as s:
            s.folders.unfile(filed["id"])
        sync_all(a, b, c)
        with DeviceStore.open(second) as s:
            s.folders.file_note(filed["id"], top["id"])
        sync_all(a, b, c)
        _no_alarm_anywhere(a, b, c)
        assert _local(c, entity("note_folder"), filed["id"])["folder_id"] == top["id"]  # type: ignore[index]
    # Conflict records name only the two notes whose edit met a purge: the folders
    # written again and the filing made again are no conflict.
    for p in (a, b, c):
        with Database.open(p) as db:
            named = {r["row_id"] for r in db.rows("SELECT row_id FROM sync_conflicts")}
        assert named == {edited_late["id"], edited_early["id"]}, p.name


def test_a_filing_made_again_after_its_tombstone_was_purged_raises_no_alarm(
    tmp_path: Path, server: Server, pg_url: str, attacker: str
) -> None:
    """A filing is keyed by its note, so a key can come back as a new row. Once the
    server has purged the tombstone, a device that never saw it (here a new one) files
    the note again: its row is based on its pull cursor, past the purged tombstone, so
    the devices that saw the unfiling take it."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("filed long ago")
        folder = s.folders.create("f")
        s.folders.file_note(note["id"], folder["id"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.unfile(note["id"])
    sync_all(a, b)
    _sql(
        attacker,
        "UPDATE note_folders SET deleted_at = now() - interval '100 days'"
        " WHERE deleted_at IS NOT NULL",
    )
    with psycopg.connect(pg_url, autocommit=True) as owner:
        assert purge_tombstones(owner, timedelta(days=90)) == 1
    fresh = device(tmp_path, "fresh")
    sync.login(fresh, server=server.url, user="ada", passphrase=PASS)
    sync.sync(fresh)
    with DeviceStore.open(fresh) as s:
        s.folders.file_note(note["id"], folder["id"])
    sync.sync(fresh)
    sync_all(a, b, fresh)
    _no_alarm_anywhere(a, b, fresh)
    assert _local(a, entity("note_folder"), note["id"])["folder_id"] == folder["id"]  # type: ignore[index]


def test_a_device_from_before_tombstones_were_kept_gets_the_table_and_syncs(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """An upgraded device has no ``sync_tombstones``: its next sync makes it (empty: the
    rows it deleted before are not protected), and the deletes from then on are kept."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("n", tags=["old", "new"])
    sync_all(a, b)
    with Database.open(b) as db, db.transaction():
        db.conn.execute("DROP TABLE sync_tombstones")
    with DeviceStore.open(a) as s:
        s.tags.remove(note["id"], "new")
    sync_all(a, b)
    with Database.open(b) as db:
        kept = db.rows("SELECT entity FROM sync_tombstones")
    assert kept == [{"entity": "note_tag"}]
    _revive(
        attacker,
        "note_tags",
        "id",
        _sql(attacker, "SELECT id FROM note_tags WHERE deleted_at IS NOT NULL")[0][0],
    )
    assert sync.sync(b).quarantined == 1


# -- bulk paths and the CLI -------------------------------------------------------------


def test_download_refuses_a_tampered_row_with_a_clear_error_and_leaves_nothing(
    tmp_path: Path, attacker: str, pg_url: str
) -> None:
    seeded = device(tmp_path, "seeded")
    with DeviceStore.open(seeded) as s:
        note = s.notes.create("bulk 東京", body="x")
        s.notes.create("another")
    upload(seeded, server_url=pg_url, passphrase=PASS, user="bulk", kdf=KDF)
    ok = tmp_path / "ok.sqlite"
    download(ok, server_url=pg_url, passphrase=PASS, user="bulk")
    with Database.open(ok) as db:
        assert db.rows("SELECT count(*) AS n FROM notes")[0]["n"] == 2
    _sql(attacker, "UPDATE notes SET is_pinned = true WHERE id = %s", (uuid.UUID(note["id"]),))
    target = tmp_path / "restored.sqlite"
    done = _duru("download", "--db", str(target), "--server", pg_url, "--user", "bulk")
    assert done.returncode != 0, done.stdout + done.stderr
    assert f"note {note['id']}" in done.stderr and "MAC does not match" in done.stderr
    assert not target.exists()


def test_duru_sync_json_names_each_refused_row_and_exits_1(
    tmp_path: Path, server: Server, attacker: str
) -> None:
    """Was a gap (duru/cli/sync.py): --json printed only the count of refused rows."""
    pg_url = attacker
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        one = s.notes.create("one")
        two = s.notes.create("two")
    sync_all(a, b)
    for n in (one, two):
        _put(pg_url, "notes", "id", n["id"], {"deleted": True})
        _bump(pg_url, "notes", "id", n["id"])
    done = _duru("sync", "--db", str(b), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["quarantined"] == 2
    assert one["id"] in done.stdout and two["id"] in done.stdout
