"""Sync between devices through `duru serve` on loopback: real server process, real
PostgreSQL, real SQLite files, real HTTP.

The server runs as a subprocess (`duru serve --port 0`) over a fresh database; devices are
separate SQLite files driven through the library (and, where it matters, separate
`duru` processes).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from duru import sync
from duru.crypto import KdfParams
from duru.errors import AuthFailed, RateLimited, SyncServerError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.local.export import export_all
from duru.server import apply_push, purge_tombstones, read_page
from duru.sync.credentials import load
from duru.sync.http import SyncApi
from duru.sync.outbox import entries, pending

PASS = "correct horse battery"
KDF = KdfParams.interactive()


class Server:
    """A `duru serve` subprocess; ``url`` once it listens."""

    def __init__(self, db_url: str, home: Path, *extra: str, env: dict[str, str] | None = None):
        self.db_url, self.home, self.extra = db_url, home, extra
        self.env = {
            **os.environ,
            "DURU_DATABASE_URL": db_url,
            "DURU_HOME": str(home),
            **(env or {}),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log = self.home / "serve.log"
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "duru.cli", "serve", "--port", "0", *self.extra],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.kill()
            raise AssertionError(f"server did not start: {line} {self.log.read_text()}")
        self.url = line.split("listening on ")[1].split()[0]
        return self.url

    def kill(self) -> None:
        self._end(lambda p: p.kill())

    def stop(self) -> None:
        self._end(lambda p: p.terminate())

    def _end(self, how: Any) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            how(proc)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("DURU_HOME", str(folder))
    return folder


@pytest.fixture
def server(pg_url: str, home: Path) -> Iterator[Server]:
    s = Server(pg_url, home)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def device(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.sqlite"
    Database.open(path).close()
    return path


def snapshot(path: Path) -> dict[str, Any]:
    with Database.open(path, create=False) as db:
        out: dict[str, Any] = export_all(db)
        # Records a device made for itself (seq 0) are its own; the server's are everyone's.
        out["sync_conflicts"] = db.rows(
            "SELECT id, entity, row_id, kind, row_json, status, copy_id FROM sync_conflicts"
            " WHERE seq > 0 ORDER BY id"
        )
    return out


def sync_all(*paths: Path) -> None:
    for _ in range(2):  # a second round carries what the first pulled elsewhere
        for p in paths:
            sync.sync(p)


def two_devices(tmp_path: Path, server: Server) -> tuple[Path, Path]:
    a, b = device(tmp_path, "a"), device(tmp_path, "b")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    sync.login(b, server=server.url, user="ada", passphrase=PASS)
    return a, b


def test_edits_deletes_moves_and_tags_on_two_devices_converge(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        work = s.folders.create("Work")
        deep = s.folders.create("Deep 深い", parent_id=work["id"])
        n1 = s.notes.create("東京 meeting 🎉", body="会議\n" * 50, tags=["work", "中文"])
        n2 = s.notes.create("groceries", body="milk", folder_id=deep["id"])
        s.tasks.create(n1["id"], "book room")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    with DeviceStore.open(b) as s:
        s.notes.edit(n1["id"], body="edited on b")
        s.tags.remove(n1["id"], "work")
        s.folders.move(deep["id"], None)
        s.notes.trash(n2["id"])
        s.notes.purge(n2["id"])
    with DeviceStore.open(a) as s:
        s.notes.create("offline on a", tags=["later"])
        s.folders.rename(work["id"], "Work (renamed)")
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    notes = {n["id"]: n for n in snap["notes"]}
    assert n2["id"] not in notes  # the purge travelled
    assert notes[n1["id"]]["body"] == "edited on b"
    assert {t["tag"] for t in snap["note_tags"] if t["note_id"] == n1["id"]} == {"中文"}
    assert {f["name"] for f in snap["folders"]} == {"Work (renamed)", "Deep 深い"}
    assert next(f for f in snap["folders"] if f["id"] == deep["id"])["parent_id"] is None


def test_a_tag_removed_and_added_again_syncs(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("tagged", tags=["work"])
    sync_all(a, b)
    for _ in range(3):
        with DeviceStore.open(a) as s:
            s.tags.remove(note["id"], "work")
            s.tags.add(note["id"], "work")
        sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    assert [t["tag"] for t in snapshot(b)["note_tags"]] == ["work"]


def test_the_same_tag_added_on_two_devices_ends_as_one(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("shared")
    sync_all(a, b)
    for p in (a, b):
        with DeviceStore.open(p) as s:
            s.tags.add(note["id"], "both")
    sync_all(a, b)
    assert snapshot(a) == snapshot(b)
    assert len(snapshot(a)["note_tags"]) == 1


def test_concurrent_edits_merge_and_a_clash_becomes_a_conflicted_copy(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("original", body="first paragraph\n\nsecond paragraph\n")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="from a", body="first paragraph, A\n\nsecond paragraph\n")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], title="from b", body="first paragraph\n\nsecond paragraph, B\n")
    sync.sync(a)
    report = sync.sync(b)
    assert (report.conflicts, report.copied) == (1, 1)
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    notes = {n["id"]: n for n in snap["notes"]}
    merged = notes.pop(note["id"])
    # Both paragraphs' edits survive; the title clashed: the first write to the server
    # stays, and B's title lives on in a conflicted copy linked to the note.
    assert merged["body"] == "first paragraph, A\n\nsecond paragraph, B\n"
    assert merged["title"] == "from a"
    [copy] = notes.values()
    assert copy["title"].startswith("from b (conflicted copy")
    assert [(k["source_id"], k["target_id"]) for k in snap["note_links"]] == [
        (copy["id"], note["id"])
    ]
    [record] = snap["sync_conflicts"]
    assert (record["status"], record["copy_id"]) == ("copied", copy["id"])
    assert json.loads(record["row_json"])["title"] == "from b"  # nothing lost


def test_edits_to_different_fields_merge_without_a_conflict(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("title", body="body")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="new title")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], body="new body")
        s.notes.pin(note["id"])
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    [row] = snap["notes"]
    assert (row["title"], row["body"], row["is_pinned"]) == ("new title", "new body", True)
    assert [c["status"] for c in snap["sync_conflicts"]] in ([], ["merged"])


def test_an_edit_here_survives_a_delete_there(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("kept", body="v1")
    sync_all(a, b)
    with DeviceStore.open(b) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    sync.sync(b)
    with DeviceStore.open(a) as s:  # A edits without having seen the delete
        s.notes.edit(note["id"], body="edited on a")
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert [n["body"] for n in snap["notes"]] == ["edited on a"]


def test_a_delete_against_an_edit_keeps_the_edit_as_a_revision(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("doomed", body="v1")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], body="edited on a")
    sync.sync(a)
    with DeviceStore.open(b) as s:
        s.notes.trash(note["id"])
        s.notes.purge(note["id"])
    sync_all(b, a)
    snap = snapshot(a)
    assert snap == snapshot(b)
    # The newer write (the edit) stays the row; the stale purge is a revision.
    assert [n["body"] for n in snap["notes"]] == ["edited on a"]
    assert [c["kind"] for c in snap["sync_conflicts"]] == ["delete"]


def test_a_retried_push_applies_once(tmp_path: Path, server: Server) -> None:
    a = device(tmp_path, "a")
    saved = sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(a) as s:
        s.notes.create("once")
    with Database.open(a) as db, SyncApi(server.url, token=saved.token) as api:
        chunk = pending(db)
        sent = [e for _, e in entries(db, chunk, saved.keys())]
        first, head = api.push("dev", sent)
        again, head_again = api.push("dev", sent)  # the answer was "lost": send it again
    assert [r.outcome for r in first] == ["applied"]
    assert [r.outcome for r in again] == ["duplicate"]
    assert again[0].version == first[0].version and head_again == head


def test_an_edit_after_a_lost_answer_is_not_a_conflict(tmp_path: Path, server: Server) -> None:
    a = device(tmp_path, "a")
    saved = sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(a) as s:
        note = s.notes.create("v1")
    with Database.open(a) as db, SyncApi(server.url, token=saved.token) as api:
        api.push("dev", [e for _, e in entries(db, pending(db), saved.keys())])
    # The device never recorded that answer; the user edits on.
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="v2")
    report = sync.sync(a)
    assert report.conflicts == 0
    assert [n["title"] for n in snapshot(a)["notes"]] == ["v2"]


def test_pull_never_skips_rows_of_pushes_that_commit_out_of_order(
    tmp_path: Path, server: Server, pg_url: str
) -> None:
    """Push 1 takes its numbers and holds them uncommitted; push 2 must wait behind it.

    A pull in between sees neither; after both commit, a pull from that cursor gets
    both, in order. If push 2 could take numbers and commit first, the pull in between
    would move its cursor past push 1's numbers, and never see push 1's row.
    """
    a = device(tmp_path, "a")
    saved = sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    keys = saved.keys()
    with DeviceStore.open(a) as s:
        s.notes.create("first")
        s.notes.create("second")
    with Database.open(a) as db:
        one, two = [e for _, e in entries(db, pending(db), keys)]
    first = psycopg.connect(pg_url, autocommit=True)
    second = psycopg.connect(pg_url, autocommit=True)
    reader = psycopg.connect(pg_url, autocommit=True)
    try:
        before = read_page(reader, saved.user_id, 0, 100).cursor
        first.execute("BEGIN")
        # apply_push opens a savepoint inside this transaction and leaves it uncommitted.
        apply_push(first, saved.user_id, "d1", [one])
        done = threading.Event()
        thread = threading.Thread(
            target=lambda: (apply_push(second, saved.user_id, "d2", [two]), done.set())
        )
        thread.start()
        assert not done.wait(1.0), "push 2 did not wait for push 1's lock"
        page = read_page(reader, saved.user_id, before, 100)
        assert page.changes == [] and page.cursor == before
        first.execute("COMMIT")
        thread.join(10)
        assert done.is_set()
        page = read_page(reader, saved.user_id, before, 100)
        assert [c.row_id for c in page.changes] == [one.row_id, two.row_id]
        assert [c.seq for c in page.changes] == sorted(c.seq for c in page.changes)
    finally:
        for c in (first, second, reader):
            c.close()


def test_a_cursor_behind_the_tombstone_horizon_resyncs_in_full(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        keep = s.notes.create("keep")
        gone = s.notes.create("gone")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.trash(gone["id"])
        s.notes.purge(gone["id"])
    sync.sync(a)
    # The horizon passes: a purge, done by hand past row level security.
    with psycopg.connect(pg_inspect_url, autocommit=True) as server_db:
        server_db.execute("DELETE FROM notes WHERE deleted_at IS NOT NULL")
        server_db.execute("UPDATE accounts SET horizon_seq = last_change_seq")
    report = sync.sync(b)
    assert report.resynced
    assert [n["id"] for n in snapshot(b)["notes"]] == [keep["id"]]


def test_an_unreachable_server_is_one_line_and_loses_nothing(
    tmp_path: Path, server: Server
) -> None:
    a = device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(a) as s:
        s.notes.create("written offline")
    server.stop()
    run = subprocess.run(
        [sys.executable, "-m", "duru.cli", "sync", "--db", str(a)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and "cannot reach the sync server" in run.stderr
    with Database.open(a) as db:
        assert db.scalar("SELECT count(*) FROM outbox") > 0
    with pytest.raises(SyncServerError):
        sync.sync(a)


def test_logout_ends_the_session_and_forgets_the_credentials(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a = device(tmp_path, "a")
    saved = sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    assert sync.logout(a)
    with pytest.raises(AuthFailed):
        sync.sync(a)
    with SyncApi(server.url, token=saved.token) as api, pytest.raises(AuthFailed):
        api.account()


def test_the_credentials_file_is_the_owners_alone(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a = device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    files = list((home / "sync").iterdir())
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    with Database.open(a) as db:  # nothing of it in the device database
        dump = "\n".join(db.conn.iterdump())
    assert load(home, files[0].stem).token not in dump


def test_three_device_processes_converge_through_the_cli(tmp_path: Path, server: Server) -> None:
    paths = [device(tmp_path, n) for n in ("a", "b", "c")]
    sync.register(paths[0], server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    env = {**os.environ, "DURU_PASSPHRASE": PASS}

    def duru(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "duru.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    for p in paths[1:]:
        duru("login", "--server", server.url, "--user", "ada", "--db", str(p))
    for i, p in enumerate(paths):
        duru("note", "add", f"note {i} ✓", "--body", f"written on device {i}", "--db", str(p))
    for _ in range(2):
        procs = [
            subprocess.Popen([sys.executable, "-m", "duru.cli", "sync", "--db", str(p)], env=env)
            for p in paths
        ]
        assert [p.wait(120) for p in procs] == [0, 0, 0]
    for p in paths:
        duru("sync", "--db", str(p))
    snaps = [snapshot(p) for p in paths]
    assert snaps[0] == snaps[1] == snaps[2]
    assert len(snaps[0]["notes"]) == 3


def test_the_server_database_holds_no_plaintext(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    marker = f"plaintext-marker-{uuid.uuid4().hex}"
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        n = s.notes.create(f"{marker} title", body=f"{marker} body", tags=[f"{marker}-tag"])
        s.tasks.create(n["id"], f"{marker} task")
        s.folders.create(f"{marker} folder")
    with DeviceStore.open(b) as s:
        s.notes.create(f"{marker} b")
    sync_all(a, b)
    with DeviceStore.open(b) as s:
        s.notes.edit(n["id"], title=f"{marker} conflicting")
    with DeviceStore.open(a) as s:
        s.notes.edit(n["id"], title=f"{marker} winner")
    sync_all(a, b)
    with psycopg.connect(pg_inspect_url) as owner:  # past row level security: every row
        tables = [
            r[0]
            for r in owner.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        for t in tables:
            text = owner.execute(
                f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {t} t"
            ).fetchone()
            assert text is not None and marker not in text[0], t
    assert snapshot(a)["sync_conflicts"]  # the conflict did happen, and its text is sealed


def test_old_tombstones_are_purged_and_a_device_behind_them_resyncs(
    tmp_path: Path, server: Server, pg_url: str, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        kept = s.notes.create("kept", tags=["x"])
        doomed = s.notes.create("doomed", tags=["y", "z"])
        held = s.notes.create("held", tags=["h"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        for note in (doomed, held):
            s.notes.trash(note["id"])
            s.notes.purge(note["id"])
    sync.sync(a)
    # A hundred days pass, by hand past row level security.
    with psycopg.connect(pg_inspect_url, autocommit=True) as server_db:
        for table in ("notes", "note_tags"):
            server_db.execute(
                f"UPDATE {table} SET deleted_at = now() - interval '100 days'"
                " WHERE deleted_at IS NOT NULL"
            )
        # A live row still pointing at a tombstone keeps it (the purge never cascades).
        server_db.execute(
            "UPDATE note_tags SET deleted_at = NULL WHERE tag_hmac IS NOT NULL"
            " AND note_id = %s AND deleted_at IS NOT NULL",
            (held["id"],),
        )
    with psycopg.connect(pg_url, autocommit=True) as owner:  # as duru serve's purger runs
        removed = purge_tombstones(owner, timedelta(days=90))
    with psycopg.connect(pg_inspect_url, autocommit=True) as server_db:
        left = server_db.execute("SELECT id FROM notes WHERE deleted_at IS NOT NULL").fetchall()
        horizon = server_db.execute("SELECT horizon_seq FROM accounts").fetchone()
    assert removed == 3  # the doomed note and its two tags
    assert [str(r[0]) for r in left] == [held["id"]]  # its live tag holds it
    assert horizon is not None and horizon[0] > 0
    report = sync.sync(b)
    assert report.resynced
    assert [n["id"] for n in snapshot(b)["notes"]] == [kept["id"]]


def test_two_worker_processes_and_a_second_server_act_as_one(
    tmp_path: Path, pg_url: str, home: Path
) -> None:
    limits = {"DURU_SERVER_MAX_FAILURES_PER_ACCOUNT": "3"}
    first = Server(pg_url, home, "--workers", "2", env=limits)
    second = Server(pg_url, home, env=limits)
    first.start()
    second.start()
    try:
        a, b = device(tmp_path, "a"), device(tmp_path, "b")
        sync.register(a, server=first.url, user="ada", passphrase=PASS, kdf=KDF)
        sync.login(b, server=second.url, user="ada", passphrase=PASS)
        with DeviceStore.open(a) as s:
            for i in range(30):
                s.notes.create(f"a{i}")
        with DeviceStore.open(b) as s:
            for i in range(30):
                s.notes.create(f"b{i}")
        threads = [threading.Thread(target=sync.sync, args=(p,)) for p in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        sync_all(a, b)
        assert snapshot(a) == snapshot(b) and len(snapshot(a)["notes"]) == 60
        # Failed logins count across processes: the limit is the database's.
        statuses = []
        for url in (first.url, first.url, second.url, second.url):
            with SyncApi(url) as api:
                try:
                    api.login("ada", b"\0" * 32)
                except AuthFailed:
                    statuses.append(401)
                except RateLimited:
                    statuses.append(429)
        assert statuses == [401, 401, 401, 429]
    finally:
        first.stop()
        second.stop()


def test_a_row_whose_parent_the_server_never_had_fails_nothing_else(
    tmp_path: Path, server: Server
) -> None:
    a = device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(a) as s:
        lost = s.notes.create("parent the server never gets", tags=["orphan"])
        s.notes.create("an ordinary note")
    with Database.open(a) as db:  # as if the parent had been purged on the server
        db.conn.execute("DELETE FROM outbox WHERE entity = 'note' AND row_id = ?", (lost["id"],))
        db.conn.execute("UPDATE notes SET version = 7 WHERE id = ?", (lost["id"],))
    report = sync.sync(a)
    assert (report.pushed, report.conflicts) == (2, 1)
    with Database.open(a) as db:
        assert db.scalar("SELECT count(*) FROM outbox") == 0
        [revision] = db.rows("SELECT entity, row_json FROM sync_conflicts")
    assert revision["entity"] == "note_tag" and "orphan" in revision["row_json"]


def test_a_row_the_server_tampered_with_is_quarantined_and_sync_goes_on(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        bad = s.notes.create("will be tampered")
        s.notes.create("fine")
    sync.sync(a)
    # A hostile server flips a bit (its operator is not bound by row level security).
    with psycopg.connect(pg_inspect_url, autocommit=True) as owner:
        owner.execute(
            "UPDATE notes SET title_enc = overlay(title_enc placing '\\xff'::bytea from 40)"
            " WHERE id = %s",
            (bad["id"],),
        )
    report = sync.sync(b)
    assert report.quarantined == 1
    with Database.open(b) as db:
        assert [n["title"] for n in db.rows("SELECT title FROM notes")] == ["fine"]
        [kept] = db.rows("SELECT source, source_key, reason FROM quarantine")
    assert kept["source_key"] == bad["id"] and "TamperedCiphertext" in kept["reason"]
    assert sync.sync(b).quarantined == 0  # the next sync is not stuck on it


def _clash(tmp_path: Path, server: Server) -> tuple[Path, Path, str]:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("original", body="body")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], title="title from a")
    with DeviceStore.open(b) as s:
        s.notes.edit(note["id"], title="title from b 東京")
    sync_all(a, b)
    return a, b, str(note["id"])


def _duru(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_conflicts_list_show_and_resolve_keeping_mine(tmp_path: Path, server: Server) -> None:
    a, b, note = _clash(tmp_path, server)
    listed = [
        json.loads(_duru("conflicts", "list", "--json", "--db", str(p)).stdout) for p in (a, b)
    ]
    assert listed[0] == listed[1] and len(listed[0]) == 1
    [c] = listed[0]
    assert (c["status"], c["row_id"], c["row"]["title"]) == ("copied", note, "title from b 東京")
    shown = _duru("conflicts", "show", c["id"][:8], "--db", str(a))
    assert shown.returncode == 0 and "title from b 東京" in shown.stdout
    done = _duru("conflicts", "resolve", c["id"][:8], "--keep", "mine", "--db", str(a))
    assert done.returncode == 0, done.stderr
    sync_all(a, b)
    for p in (a, b):
        assert json.loads(_duru("conflicts", "list", "--json", "--db", str(p)).stdout) == []
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert [n["title"] for n in snap["notes"]] == ["title from b 東京"]  # copy gone, mine back
    assert [r["status"] for r in snap["sync_conflicts"]] == ["resolved"]


def test_resolving_keeping_both_keeps_the_copy(tmp_path: Path, server: Server) -> None:
    a, b, note = _clash(tmp_path, server)
    [c] = json.loads(_duru("conflicts", "list", "--json", "--db", str(b)).stdout)
    assert _duru("conflicts", "resolve", c["id"], "--keep", "both", "--db", str(b)).returncode == 0
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert sorted(n["title"][:12] for n in snap["notes"]) == ["title from a", "title from b"]
    bad = _duru("conflicts", "resolve", "zz", "--keep", "mine", "--db", str(a))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_folder_moved_on_one_device_and_renamed_on_the_other_gets_both(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        top = s.folders.create("Top")
        sub = s.folders.create("Sub", parent_id=top["id"])
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.move(sub["id"], None)
    with DeviceStore.open(b) as s:
        s.folders.rename(sub["id"], "Renamed 東京")
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    moved = next(f for f in snap["folders"] if f["id"] == sub["id"])
    assert (moved["name"], moved["parent_id"]) == ("Renamed 東京", None)


def test_notes_filed_into_a_folder_deleted_elsewhere_survive(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        folder = s.folders.create("Doomed")
        note = s.notes.create("to be filed")
    sync_all(a, b)
    with DeviceStore.open(a) as s:
        s.folders.delete(folder["id"])
    with DeviceStore.open(b) as s:
        s.folders.file_note(note["id"], folder["id"])
    sync_all(a, b)
    snap = snapshot(a)
    assert snap == snapshot(b)
    assert [n["id"] for n in snap["notes"]] == [note["id"]]  # the note survives either way


def test_two_syncs_of_one_device_take_turns(tmp_path: Path, server: Server, home: Path) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        for i in range(50):
            s.notes.create(f"note {i}")
    with Database.open(a) as db:
        device = db.meta("device_id")
    lock = (home / "sync" / f"{device}.json").with_suffix(".lock")
    with lock.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another sync of the device is running
        threading.Timer(1.0, fcntl.flock, (held.fileno(), fcntl.LOCK_UN)).start()
        began = time.monotonic()
        report = sync.sync(a)
        assert time.monotonic() - began >= 0.9 and report.pushed == 50
    runs = [threading.Thread(target=sync.sync, args=(a,)) for _ in range(3)]
    for t in runs:
        t.start()
    for t in runs:
        t.join(60)
    sync_all(a, b)
    assert snapshot(a) == snapshot(b) and len(snapshot(b)["notes"]) == 50


def test_serve_on_its_embedded_postgres_stops_it_on_sigterm(pg_scratch: Any) -> None:
    home = pg_scratch("serve-home")
    env = {k: v for k, v in os.environ.items() if k != "DURU_DATABASE_URL"}
    s = Server("", home, env=env)
    s.env.pop("DURU_DATABASE_URL", None)
    s.start()
    with httpx.Client(base_url=s.url) as http:
        assert http.get("/v1/health").status_code == 200
    s.stop()  # SIGTERM, as a service manager sends it
    pids = subprocess.run(
        ["pgrep", "-f", f"postgres -D {home / 'pg'}"], capture_output=True, text=True
    ).stdout.split()
    assert pids == [], "duru serve left its embedded PostgreSQL running"
