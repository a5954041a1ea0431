"""Attacks on encrypted snapshots (``duru.sync.snapshot``): a hostile tester's findings.

Real ``duru serve`` over PostgreSQL, real SQLite files; each test names what a user
would have seen before its fix.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import test_sync
from test_sync import PASS, Server, sync_all, two_devices
from test_sync import snapshot as exported
from test_sync_snapshot import _fill, _keys, _token

from duru import sync
from duru.local import DeviceStore
from duru.local.db import Database
from duru.sync import snapshot as snap
from duru.sync.http import SyncApi

home = test_sync.home
server = test_sync.server


@pytest.fixture(autouse=True)
def _upload_after_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(snap.EVERY_VAR, "1")


def _healthy(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.execute("INSERT INTO notes_fts(notes_fts) VALUES ('integrity-check')")


def test_the_plaintext_scratch_files_are_the_owners_alone(tmp_path: Path, server: Server) -> None:
    """Defect: the decrypted copy being downloaded, and the maker's copy being uploaded,
    were made with the umask's mode (0644): every local user could read all the notes
    of a 0600 device while it synced (and after, when the sync was killed)."""
    old = os.umask(0o022)
    try:
        a, b = two_devices(tmp_path, server)
        _fill(a)
        os.chmod(a, 0o600)
        assert sync.sync(a).snapshot_out
        keys = _keys(a)
        with Database.open(a, create=False) as db:
            made = snap.make(db, keys.master_key, keys.user_id)  # type: ignore[attr-defined]
        assert isinstance(made, snap.Made)
        try:
            assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
        finally:
            made.discard()
        into = snap.scratch_in(b)
        modes: list[int] = []
        with SyncApi(server.url, token=_token(b)) as api, api.snapshot() as found:
            assert found is not None
            snap.fetch(
                found[1],
                keys.master_key,  # type: ignore[attr-defined]
                keys.user_id,  # type: ignore[attr-defined]
                into,
                lambda _: modes.append(stat.S_IMODE(into.stat().st_mode)),
            )
        snap.discard(into)
        assert modes and set(modes) == {0o600}
    finally:
        os.umask(old)


def test_a_device_of_mode_0600_keeps_it_after_the_swap(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    os.chmod(b, 0o600)
    assert sync.sync(b).snapshot_in
    assert stat.S_IMODE(b.stat().st_mode) == 0o600
    _healthy(b)


def test_a_killed_upload_leaves_no_plaintext_copy_behind(tmp_path: Path, server: Server) -> None:
    """Defect: ``duru sync`` killed while uploading left its decrypted copy of the whole
    database beside it; only a new device's first sync removed such files, so on the
    maker it stayed for good (the disk filling up, deleted notes still readable)."""
    a, _ = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    left = a.with_name(f"{a.name}.snapshot-out-99999-1.tmp")
    left.write_bytes(b"the notes, in plaintext")
    with DeviceStore.open(a) as s:
        s.notes.create("one more")
    sync.sync(a)
    assert not left.exists()
    assert not snap.scratch_files(a)


def test_a_device_that_is_a_symlink_stays_one(tmp_path: Path, server: Server) -> None:
    """Defect: the swap renamed the snapshot over the symlink (the link became a plain
    file) and wiped the header of the file it pointed at: that file no longer opened."""
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    real = tmp_path / "elsewhere" / "b-real.sqlite"
    real.parent.mkdir()
    os.replace(b, real)
    b.symlink_to(real)
    assert sync.sync(b).snapshot_in
    assert b.is_symlink() and b.resolve() == real.resolve()
    _healthy(real)
    sync_all(a, b)
    assert exported(a) == exported(b)


def test_the_new_devices_quarantine_is_kept(tmp_path: Path, server: Server) -> None:
    """Defect: the swap took the snapshot's (empty) quarantine for the device's: rows an
    import had quarantined there (their only copy) were gone after the first sync,
    though the snapshot's promise is that the quarantine stays on its device."""
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    with Database.open(b, create=False) as db, db.transaction():
        db.quarantine("import", "notes", "n-1", "bad date 日付", {"title": "keep me 🧷"})
    assert sync.sync(b).snapshot_in
    with Database.open(b, create=False) as db:
        assert db.scalar("SELECT count(*) FROM quarantine") == 1
    sync_all(a, b)
    mine = exported(b)
    assert len(mine.pop("quarantine")) == 1
    assert {k: v for k, v in exported(a).items() if k != "quarantine"} == mine
    _healthy(b)


@pytest.mark.parametrize("mode", ["wal-read", "wal-write", "fresh"])
def test_a_plain_connection_on_the_new_device_never_loses_a_write(
    tmp_path: Path, server: Server, mode: str
) -> None:
    """Another program holds the device open (after a read, after a write, or opened
    only): whatever the install does, its next write lands in the device or fails."""
    a, b = two_devices(tmp_path, server)
    _fill(a)
    assert sync.sync(a).snapshot_out
    other = sqlite3.connect(b, isolation_level=None)
    try:
        if mode == "wal-read":
            other.execute("SELECT count(*) FROM notes").fetchone()
        elif mode == "wal-write":
            other.execute("INSERT INTO duru_meta (key, value) VALUES ('before', '1')")
        report = sync.sync(b)
        assert report.snapshot_in or mode == "wal-write", report
        try:
            other.execute("INSERT INTO duru_meta (key, value) VALUES ('after', 'ところ')")
            wrote = True
        except sqlite3.DatabaseError:
            wrote = False
    finally:
        other.close()
    _healthy(b)
    with Database.open(b, create=False) as db:
        assert (db.meta("after") == "ところ") is wrote
        assert db.scalar("SELECT count(*) FROM notes") == 2
    sync_all(a, b)
    assert exported(a) == exported(b)


def _many(path: Path, n: int) -> None:
    with DeviceStore.open(path) as s:
        for i in range(n):
            s.notes.create(f"note {i} 東京 🎉", body=f"body {i} " + "本文 lorem ipsum " * 120)


# Runs ``duru sync`` with one step patched to kill the process (SIGKILL, as kill -9)
# when it is reached: a kill at exactly that point, every time.
_KILLER = """
import os, signal, sys
from duru.sync import snapshot as snap

where = sys.argv.pop(1)
def die(*_a, **_k):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "fetching":
    real_fetch = snap.fetch
    def fetch(pieces, key, user, into, progress=None):
        def step(done):
            if done > (1 << 20):
                die()
        return real_fetch(pieces, key, user, into, step)
    snap.fetch = fetch
elif where == "become":
    snap._become = die
elif where == "before-rename":
    real_fsync = snap._fsync
    def fsync(path):
        real_fsync(path)
        if ".snapshot-in-" in str(path):
            die()
    snap._fsync = fsync
elif where == "before-wipe":
    os.pwrite = die
elif where == "copying":
    snap._swap = lambda *a: None
    snap._set_meta = die
elif where == "uploading":
    real_frames = snap.Made.frames
    def frames(self):
        for i, piece in enumerate(real_frames(self)):
            if i == 4:
                die()
            yield piece
    snap.Made.frames = frames
elif where == "after-upload":
    snap.remember = die
from duru.cli import main
sys.exit(main())
"""


def _killed_sync(path: Path, where: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, where, "sync", "--db", str(path)],
        env={**os.environ, "DURU_PASSPHRASE": PASS},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode


@pytest.mark.parametrize("where", ["fetching", "become", "before-rename", "before-wipe", "copying"])
def test_a_new_device_killed_at_each_step_of_the_install_recovers(
    tmp_path: Path, server: Server, where: str
) -> None:
    a, b = two_devices(tmp_path, server)
    _many(a, 600)
    assert sync.sync(a).snapshot_out
    os.chmod(b, 0o600)
    assert _killed_sync(b, where) == -9
    _healthy(b)
    with Database.open(b, create=False) as db:
        count = db.scalar("SELECT count(*) FROM notes")
        assert count in (0, 600), count
        assert (count == 600) is (db.meta("sync_cursor") is not None)
    with DeviceStore.open(b) as s:  # the app works on it at once
        s.search.query("東京")
    report = sync.sync(b)
    assert not snap.scratch_files(b)
    assert report.snapshot_in or count == 600, report
    assert stat.S_IMODE(b.stat().st_mode) == 0o600
    _healthy(b)
    sync_all(a, b)
    assert exported(a) == exported(b)
    with DeviceStore.open(b) as s:
        assert len(s.search.query("lorem")) > 0


@pytest.mark.parametrize("where", ["uploading", "after-upload"])
def test_a_maker_killed_at_each_step_of_the_upload_recovers(
    tmp_path: Path, server: Server, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_devices(tmp_path, server)
    _many(a, 600)
    monkeypatch.setenv(snap.EVERY_VAR, "0")
    sync.sync(a)
    monkeypatch.setenv(snap.EVERY_VAR, "1")
    assert _killed_sync(a, where) == -9
    _healthy(a)
    with DeviceStore.open(a) as s:
        s.notes.create("after the kill")
    report = sync.sync(a)
    assert not snap.scratch_files(a)
    assert report.snapshot_out or where == "after-upload", report
    report = sync.sync(b)
    assert report.snapshot_in, report
    sync_all(a, b)
    assert exported(a) == exported(b)
