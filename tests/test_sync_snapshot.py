"""Encrypted snapshots: a new device starts from one, and converges with the others.

Real ``duru serve`` over PostgreSQL, real SQLite files, real crypto. The server's copy
is attacked the way a hostile operator could: a flipped byte, a cut end, another
account's snapshot. Each time the new device pulls rows instead and loses nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import test_sync
from test_sync import KDF, PASS, Server, device, sync_all, two_devices
from test_sync import snapshot as exported

from duru import sync
from duru.local import DeviceStore
from duru.local.db import Database
from duru.server import purge_tombstones
from duru.sync import credentials
from duru.sync import snapshot as snap
from duru.sync.http import SyncApi

home = test_sync.home
server = test_sync.server


@pytest.fixture(autouse=True)
def _upload_after_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(snap.EVERY_VAR, "1")


def _fill(path: Path) -> dict[str, str]:
    with DeviceStore.open(path) as s:
        work = s.folders.create("Work 仕事")
        n1 = s.notes.create("東京 meeting 🎉", body="会議\n" * 20, tags=["work", "中文"])
        n2 = s.notes.create("groceries", body="oat milk", folder_id=work["id"])
        gone = s.notes.create("to be deleted", body="x")
        s.tasks.create(n1["id"], "book room", labels=["a"])
    with DeviceStore.open(path) as s:
        s.notes.purge(gone["id"], force=True)
    return {"n1": n1["id"], "n2": n2["id"], "gone": gone["id"]}


def _keys(path: Path) -> object:
    with Database.open(path, create=False) as db:
        return credentials.load(sync.client.sync_home(None), str(db.meta("device_id"))).keys()


def _parts(inspect_url: str, sql: str, *params: object) -> None:
    # A hostile server: its operator is not bound by row level security.
    with psycopg.connect(inspect_url, autocommit=True) as owner:
        owner.execute(sql, params)


def test_a_new_device_starts_from_the_snapshot_and_converges(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    ids = _fill(a)
    first = sync.sync(a)
    assert first.snapshot_out == first.cursor > 0, first
    with psycopg.connect(pg_inspect_url, autocommit=True) as owner:
        stored = b"".join(
            bytes(row[0]) for row in owner.execute("SELECT data FROM snapshot_parts ORDER BY part")
        )
    assert len(stored) > 10_000
    for plain in ("東京 meeting", "会議", "oat milk", "groceries", "SQLite format 3"):
        assert plain.encode() not in stored, plain
    with Database.open(b, create=False) as db:
        own_device = db.meta("device_id")
    report = sync.sync(b)
    assert report.snapshot_in == first.cursor and not report.snapshot_note, report
    assert report.pulled == 0  # nothing came after it
    assert exported(a) == exported(b)
    with DeviceStore.open(b) as s:
        assert [hit.id for hit in s.search.query("会議")] == [ids["n1"]]  # the index came along
        assert s.db.meta("device_id") == own_device
        assert s.db.scalar("SELECT count(*) FROM outbox") == 0
        s.notes.edit(ids["n2"], body="soy milk")
    sync_all(b, a)
    assert exported(a) == exported(b)
    with DeviceStore.open(a) as s:
        assert s.notes.get(ids["n2"])["body"] == "soy milk"
        assert s.db.scalar("SELECT count(*) FROM notes WHERE id = ?", [ids["gone"]]) == 0


def test_changes_after_the_snapshot_are_pulled_on_top(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_devices(tmp_path, server)
    ids = _fill(a)
    assert sync.sync(a).snapshot_out
    monkeypatch.setenv(snap.EVERY_VAR, "0")  # no newer snapshot: b must pull the rest
    with DeviceStore.open(a) as s:
        s.notes.edit(ids["n1"], title="Kyoto")
        s.notes.purge(ids["n2"], force=True)
        s.notes.create("after the snapshot")
    sync.sync(a)
    report = sync.sync(b)
    assert report.snapshot_in and report.pulled >= 3, report
    _converge(a, b)


def test_a_snapshot_the_server_dropped_is_replaced_within_a_day(
    tmp_path: Path, server: Server, pg_inspect_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete after the snapshot is purged: the snapshot, older than the horizon now,
    is dropped (a device starting from it would miss the delete). The devices went on
    counting from it: a new device pulled rows until a quarter of the account changed."""
    monkeypatch.setenv(snap.EVERY_VAR, "5")
    a, b = two_devices(tmp_path, server)
    ids = _fill(a)
    first = sync.sync(a).snapshot_out
    assert first
    with DeviceStore.open(a) as s:
        s.notes.purge(ids["n2"], force=True)
    assert not sync.sync(a).snapshot_out  # a few changes: not due
    with psycopg.connect(pg_inspect_url, autocommit=True) as owner:
        assert purge_tombstones(owner, timedelta(0)) > 0
        assert owner.execute("SELECT horizon_seq FROM accounts").fetchone()[0] > first
    with DeviceStore.open(a) as s:
        s.notes.edit(ids["n1"], title="still here")
    assert not sync.sync(a).snapshot_out  # asked yesterday (when it uploaded)
    monkeypatch.setattr(snap, "CHECK_EVERY_SECONDS", 0, raising=False)  # a day later
    again = sync.sync(a)
    assert again.snapshot_out > first and not again.snapshot_note, again
    report = sync.sync(b)
    assert report.snapshot_in == again.snapshot_out and report.pulled == 0, report
    _converge(a, b)
    # A server that drops it again (or always says it has none) gets one a day at most.
    monkeypatch.setattr(snap, "CHECK_EVERY_SECONDS", 24 * 3600, raising=False)
    _parts(pg_inspect_url, "DELETE FROM snapshots")
    with DeviceStore.open(a) as s:
        s.notes.edit(ids["n1"], title="and again")
    assert not sync.sync(a).snapshot_out
    assert not sync.sync(b).snapshot_out  # b started from it today


def test_a_device_that_holds_rows_pulls_rows_and_keeps_its_own(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    with DeviceStore.open(b) as s:
        mine = s.notes.create("written on b before its first sync")
    report = sync.sync(b)
    assert report.snapshot_in == 0
    _converge(a, b)
    with DeviceStore.open(a) as s:
        assert s.notes.get(mine["id"])["title"] == "written on b before its first sync"


def test_install_refuses_a_device_written_to_meanwhile(tmp_path: Path, server: Server) -> None:
    """The race of an app writing during the download: the check is in the transaction."""
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    keys = _keys(b)
    into = tmp_path / "snap.tmp"
    with SyncApi(server.url, token=_token(b)) as api, api.snapshot() as found:
        assert found is not None
        header = snap.fetch(found[1], keys.master_key, keys.user_id, into)  # type: ignore[attr-defined]
    with DeviceStore.open(b) as s:
        late = s.notes.create("written while the snapshot came")
    assert snap.install(b, into, header) is False
    with DeviceStore.open(b) as s:
        assert [n["id"] for n in s.notes.list_recent()] == [late["id"]]
        assert s.db.meta("sync_cursor") is None


def test_a_device_open_elsewhere_gets_the_tables_copied_in(tmp_path: Path, server: Server) -> None:
    """The app has the new device open: the file cannot be swapped, its tables are
    copied in instead, and that open connection sees them."""
    a, b = two_devices(tmp_path, server)
    ids = _fill(a)
    assert sync.sync(a).snapshot_out
    with DeviceStore.open(b) as app:
        assert app.notes.count() == 0
        report = sync.sync(b)
        assert report.snapshot_in and not report.snapshot_note, report
        assert app.notes.get(ids["n1"])["title"] == "東京 meeting 🎉"
        assert [hit.id for hit in app.search.query("会議")] == [ids["n1"]]
    assert exported(a) == exported(b)


def test_a_connection_opened_on_the_old_file_fails_instead_of_writing_into_it(
    tmp_path: Path, server: Server
) -> None:
    """Opened before the swap but not used yet (so the exclusive lock was free): its
    file is the old one, renamed over; a write there would be lost, so it must fail."""
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    stale = sqlite3.connect(b, isolation_level=None)  # opened, no lock taken yet
    try:
        assert sync.sync(b).snapshot_in
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            stale.execute("INSERT INTO duru_meta (key, value) VALUES ('lost', 'write')")
    finally:
        stale.close()
    with Database.open(b, create=False) as db:
        assert db.meta("lost") is None and db.scalar("SELECT count(*) FROM notes") == 2


@pytest.mark.parametrize(
    "attack, why",
    [
        (
            "UPDATE snapshot_parts SET data = overlay(data placing '\\x00'::bytea from 5000)"
            " WHERE part = 0",
            "does not open",
        ),
        # The answer ends before its Content-Length: the download breaks off.
        ("DELETE FROM snapshot_parts WHERE part = (SELECT max(part) FROM snapshot_parts)", "body"),
    ],
    ids=["flipped", "cut"],
)
def test_a_tampered_snapshot_is_not_used_and_rows_are_pulled(
    tmp_path: Path, server: Server, pg_inspect_url: str, attack: str, why: str
) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    _parts(pg_inspect_url, attack)
    report = sync.sync(b, snapshots=True)
    assert report.snapshot_in == 0 and why in report.snapshot_note, report
    assert report.pulled > 0
    _converge(a, b)
    assert not snap.scratch_files(b)


def test_another_accounts_snapshot_does_not_open(
    tmp_path: Path, server: Server, pg_inspect_url: str
) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    eve = device(tmp_path, "eve")
    sync.register(eve, server=server.url, user="eve", passphrase=PASS, kdf=KDF)
    with DeviceStore.open(eve) as s:
        s.notes.create("eve's")
    sync.sync(eve)
    # The server hands b eve's (genuine) snapshot as if it were ada's.
    ada = "(SELECT user_id FROM accounts WHERE name = 'ada')"
    eve_ = "(SELECT user_id FROM accounts WHERE name = 'eve')"
    _parts(
        pg_inspect_url,
        f"DELETE FROM snapshots WHERE user_id = {ada};"
        f" INSERT INTO snapshots (user_id, id, change_seq, bytes, complete)"
        f" SELECT {ada}, id, change_seq, bytes, complete FROM snapshots WHERE user_id = {eve_};"
        f" INSERT INTO snapshot_parts (user_id, snapshot_id, part, data)"
        f" SELECT {ada}, snapshot_id, part, data FROM snapshot_parts WHERE user_id = {eve_}",
    )
    report = sync.sync(b)
    assert report.snapshot_in == 0 and "does not open" in report.snapshot_note, report
    _converge(a, b)


def test_no_snapshot_while_changes_wait_and_none_carries_device_state(
    tmp_path: Path, server: Server
) -> None:
    a, _ = two_devices(tmp_path, server)
    _fill(a)
    sync.sync(a, snapshots=False)
    with DeviceStore.open(a) as s:
        s.notes.create("offline, not pushed yet")
    with Database.open(a, create=False) as db:
        keys = _keys(a)
        why = snap.make(db, keys.master_key, keys.user_id)  # type: ignore[attr-defined]
    assert isinstance(why, str) and "does not have yet" in why
    report = sync.sync(a)
    assert report.snapshot_out
    with SyncApi(server.url, token=_token(a)) as api, api.snapshot() as found:
        assert found is not None
        into = tmp_path / "shared.sqlite"
        snap.fetch(found[1], keys.master_key, keys.user_id, into)  # type: ignore[attr-defined]
    with sqlite3.connect(into) as copy:
        meta = dict(copy.execute("SELECT key, value FROM duru_meta"))
        assert set(meta) <= {"schema_version", "model_fingerprint", "sync_cursor", "sync_account"}
        for table in ("outbox", "quarantine", "sync_base", "sync_merges", "sync_resolutions"):
            assert copy.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


class _InfoCountingApi(SyncApi):
    """The real client, counting its questions about the server's snapshot."""

    asked = 0

    def snapshot_info(self) -> int | None:
        self.asked += 1
        return super().snapshot_info()


def test_a_device_holding_a_row_back_asks_nothing_and_says_nothing_about_snapshots(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row too big to push stays in the outbox, so the device cannot be shared; every
    sync past the threshold asked the server for its snapshot and said "no snapshot
    uploaded: ... changes the server does not have yet" again. Once the row goes, the
    snapshot is made."""
    a, _ = two_devices(tmp_path, server)
    _fill(a)
    monkeypatch.setattr(sync.client, "MAX_ENTRY_BYTES", 8 * 1024)
    with DeviceStore.open(a) as s:
        big = s.notes.create("big", body="글 " * 10_000)
    for _ in range(3):
        api = _InfoCountingApi(server.url, token=_token(a))
        with api:
            report = sync.sync(a, api=api)
        assert report.too_big == [f"note {big['id']}"], report
        assert not report.snapshot_out and not report.snapshot_note, report
        assert api.asked == 0
    with DeviceStore.open(a) as s:
        s.notes.edit(big["id"], body="short now")
    report = sync.sync(a)
    assert not report.too_big and report.snapshot_out == report.cursor, report


def test_the_plain_copies_are_the_owners_alone_and_the_device_keeps_its_mode(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    modes: list[int] = []
    real_make, real_install = snap.make, snap.install

    def make(db: Database, *args: object) -> object:
        made = real_make(db, *args)  # type: ignore[arg-type]
        assert isinstance(made, snap.Made)
        modes.append(made.path.stat().st_mode & 0o777)
        return made

    def install(db_path: Path, path: Path, header: snap.Header) -> bool:
        modes.append(path.stat().st_mode & 0o777)
        return real_install(db_path, path, header)

    monkeypatch.setattr(snap, "make", make)
    monkeypatch.setattr(snap, "install", install)
    umask = os.umask(0o022)  # a usual one: files made plainly would be readable by all
    try:
        assert sync.sync(a).snapshot_out
        b.chmod(0o640)
        assert sync.sync(b).snapshot_in
    finally:
        os.umask(umask)
    assert modes == [0o600, 0o600]
    assert b.stat().st_mode & 0o777 == 0o640


def test_a_device_reached_by_a_link_is_replaced_where_it_is(tmp_path: Path, server: Server) -> None:
    a = device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=PASS, kdf=KDF)
    _fill(a)
    assert sync.sync(a).snapshot_out
    (tmp_path / "real").mkdir()
    real = device(tmp_path / "real", "b")
    link = tmp_path / "b.sqlite"
    link.symlink_to(real)
    sync.login(link, server=server.url, user="ada", passphrase=PASS)
    assert sync.sync(link).snapshot_in
    assert link.is_symlink() and link.resolve() == real.resolve()
    with Database.open(real, create=False) as db:
        assert db.scalar("SELECT count(*) FROM notes") == 2
    _converge(a, link)


def test_a_scratch_file_left_by_a_killed_sync_is_removed(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    left = snap.scratch_in(b)
    left.write_bytes(os.urandom(1000))
    assert sync.sync(b).snapshot_in
    assert not snap.scratch_files(b)


def test_the_cli_says_where_it_started_and_no_snapshot_pulls_rows(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    done = _duru("sync", "--db", str(a))
    assert done.returncode == 0 and "uploaded a snapshot" in done.stdout, done
    c = device(tmp_path, "c")
    sync.login(c, server=server.url, user="ada", passphrase=PASS)
    done = _duru("sync", "--no-snapshot", "--json", "--db", str(c))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["snapshot_in"] == 0 and shown["pulled"] > 0
    done = _duru("sync", "--db", str(b))
    assert done.returncode == 0 and "started from the account's snapshot" in done.stdout, done
    assert exported(b) == exported(c) == exported(a)


def test_a_bad_snapshot_every_is_one_line(tmp_path: Path, server: Server) -> None:
    a, _ = two_devices(tmp_path, server)
    _fill(a)
    done = _duru("sync", "--db", str(a), env={snap.EVERY_VAR: "lots"})
    assert done.returncode == 2, done
    assert done.stderr == (
        f"duru: {snap.EVERY_VAR} must be a whole number of changes (0: no uploads)\n"
    )
    with Database.open(a, create=False) as db:  # it stopped before doing anything
        assert db.scalar("SELECT count(*) FROM outbox") > 0


def _converge(a: Path, b: Path) -> None:
    sync_all(a, b)
    assert exported(a) == exported(b)


def _token(path: Path) -> str:
    with Database.open(path, create=False) as db:
        return credentials.load(sync.client.sync_home(None), str(db.meta("device_id"))).token


def _duru(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duru.cli", *args],
        env={**os.environ, "DURU_PASSPHRASE": PASS, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
