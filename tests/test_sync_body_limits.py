"""Hostile tests of the push's handling of rows too big to send and of 413 answers
(``_Held``, ``_push_halves``, ``_without_held`` in duru.sync.client).

Real `duru serve` on loopback with a small DURU_SERVER_MAX_BODY_BYTES, real PostgreSQL,
real SQLite files. A held row must stay in the outbox with every row below it, nothing
may be lost or applied twice, and devices converge once the big row is shortened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_sync import Server, snapshot, two_devices

from duru import sync
from duru.errors import RequestTooLarge, SyncServerError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import NOTE
from duru.sync.credentials import load
from duru.sync.http import SyncApi

KB = 1024


@contextmanager
def small_server(
    tmp_path: Path, pg_url: str, limit: int, mp: pytest.MonkeyPatch
) -> Iterator[Server]:
    home = tmp_path / "home"
    mp.setenv("DURU_HOME", str(home))
    s = Server(pg_url, home, env={"DURU_SERVER_MAX_BODY_BYTES": str(limit)})
    s.start()
    try:
        yield s
    finally:
        s.stop()


def outbox_rows(path: Path) -> set[tuple[str, str]]:
    with Database.open(path, create=False) as db:
        return {(r["entity"], r["row_id"]) for r in db.rows("SELECT entity, row_id FROM outbox")}


def ids(path: Path, table: str) -> set[str]:
    with Database.open(path, create=False) as db:
        return {r["id"] for r in db.rows(f"SELECT id FROM {table}")}


def waiting(path: Path) -> int:
    """Rows the device got from the server but could not place (parent missing)."""
    with Database.open(path, create=False) as db:
        names = {r["name"] for r in db.rows("SELECT name FROM sqlite_master WHERE type='table'")}
        n = 0
        for t in names:
            if "wait" in t or "pending_in" in t:
                n += int(db.scalar(f"SELECT count(*) FROM {t}"))
        return n


def api_for(path: Path, home: Path, cls: type[SyncApi] = SyncApi) -> SyncApi:
    with Database.open(path, create=False) as db:
        device = str(db.meta("device_id"))
    saved = load(home, device)
    return cls(saved.server, token=saved.token)


BIG = "큰 글 🐘 " * 12_000  # ~ 130 KB of UTF-8, over a 64 KB limit once sealed


def converge(a: Path, b: Path) -> None:
    """a syncs, then b, then a: the two hold the same."""
    sync.sync(a)
    sync.sync(b)
    sync.sync(a)
    assert snapshot(a) == snapshot(b)


def settle(a: Path, b: Path) -> None:
    """a syncs, then b twice, then a; b's queued conflict outcomes go out in batches the
    server takes (a queue sent whole used to fail here, and on every sync after)."""
    sync.sync(a)
    sync.sync(b)
    sync.sync(b)
    sync.sync(a)
    assert snapshot(a) == snapshot(b)


def killing_after_a_half(srv: Server) -> type[SyncApi]:
    """A client that kills ``srv`` (SIGKILL) once the first half after a 413 has landed:
    the rest of the halving never goes."""
    seen = {"ok": 0}

    class Killer(SyncApi):
        def push(self, device: str, entries: list[Any]) -> Any:
            try:
                out = super().push(device, entries)
            except RequestTooLarge:
                seen["413"] = 1
                raise
            seen["ok"] += 1
            assert seen.get("413"), "killed during the halving"
            if seen["ok"] == 1:
                srv.kill()
            return out

    return Killer


def restarted(srv: Server, pg_url: str, home: Path, env: dict[str, str]) -> Server:
    """``srv``, killed, started again on its port."""
    port = srv.url.rsplit(":", 1)[1].strip("/")
    again = Server(pg_url, home, "--port", port, env=env)
    again.start()
    return again


def test_held_note_with_every_kind_of_child_then_shortened_converges(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            folder = s.folders.create("文件夹 📁")
            normal = s.notes.create("normal 普通", body="small")
            big = s.notes.create("big 大", body=BIG, tags=["巨大", "🐘"], folder_id=folder["id"])
            task = s.tasks.create(big["id"], "任务 under big")
            s.tasks.create(big["id"], "subtask", parent_task_id=task["id"])
            s.reminders.create(big["id"], remind_at=2_000_000_000_000, title="提醒")
            s.links.add(normal["id"], "big 大")  # normal -> held
            s.links.add(big["id"], "normal 普通")  # held -> normal
        r = sync.sync(a)
        assert r.too_big == [f"note {big['id']}"]
        # note, 2 tags, filing, 2 tasks, reminder, 2 links
        assert r.held == 9, r
        sync.sync(b)
        snap_b = snapshot(b)
        assert {n["title"] for n in snap_b["notes"]} == {"normal 普通"}
        assert waiting(b) == 0
        # the held row is shortened: everything goes, both devices agree
        with DeviceStore.open(a) as s:
            s.notes.edit(big["id"], body="now small 小 🐣")
        r2 = sync.sync(a)
        assert r2.too_big == [] and r2.held == 0 and r2.conflicts == 0
        assert outbox_rows(a) == set()
        sync.sync(b)
        sync.sync(a)
        assert snapshot(a) == snapshot(b)


def test_held_note_children_in_the_next_already_sealed_chunk(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small notes fill the first chunk with the big one; its tags/tasks come after every
    note (entity order) so they sit in the next chunk, sealed before the 413 came."""
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with Database.open(a, create=False) as db, db.transaction():
            for i in range(700):
                db.insert(NOTE, {"title": f"n{i} 😀", "body": "本文 " * 20})
        with DeviceStore.open(a) as s:
            big = s.notes.create("big", body=BIG, tags=["t1", "t2"])
            s.tasks.create(big["id"], "task")
            for i in range(5):
                s.tags.add(s.notes.create(f"tagged {i}")["id"], "ok")
        r = sync.sync(a)
        assert r.too_big == [f"note {big['id']}"]
        assert r.held == 4
        assert r.applied == 700 + 5 + 5 and r.conflicts == 0
        sync.sync(b)
        assert waiting(b) == 0
        assert len(snapshot(b)["notes"]) == 705
        with DeviceStore.open(a) as s:
            s.notes.edit(big["id"], body="short")
        assert sync.sync(a).held == 0
        sync.sync(b)
        sync.sync(a)
        assert snapshot(a) == snapshot(b)


def test_children_added_to_a_held_note_in_a_later_sync_are_held_too(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            big = s.notes.create("big", body=BIG)
        assert sync.sync(a).held == 1
        with DeviceStore.open(a) as s:
            s.tags.add(big["id"], "later")
            s.tasks.create(big["id"], "later task")
            other = s.notes.create("other")
            s.links.add(other["id"], "big")
        r = sync.sync(a)
        assert r.too_big == [f"note {big['id']}"] and r.held == 4
        sync.sync(b)
        assert waiting(b) == 0
        with DeviceStore.open(a) as s:
            s.notes.edit(big["id"], body="x")
        converge(a, b)


def test_deletes_below_a_held_synced_note_go_and_converge(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            n = s.notes.create("synced", body="small", tags=["keep", "drop"])
            t = s.tasks.create(n["id"], "to delete")
        sync.sync(a)
        sync.sync(b)
        with DeviceStore.open(a) as s:
            s.notes.edit(n["id"], body=BIG)
            s.tags.remove(n["id"], "drop")
            s.tasks.delete(t["id"])
        r = sync.sync(a)
        assert r.too_big == [f"note {n['id']}"]
        sync.sync(b)
        with DeviceStore.open(b) as s:
            assert s.tags.list_for(n["id"]) == ["keep"]
        with DeviceStore.open(a) as s:
            s.notes.edit(n["id"], body="short again")
        converge(a, b)


def test_held_note_purged_before_it_ever_synced(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            big = s.notes.create("doomed", body=BIG, tags=["x"])
            s.tasks.create(big["id"], "t")
            s.reminders.create(big["id"], remind_at=2_000_000_000_000)
            keep = s.notes.create("keep")
            s.links.add(keep["id"], "doomed")
        assert sync.sync(a).held == 5
        with DeviceStore.open(a) as s:
            s.notes.trash(big["id"])
            s.notes.purge(big["id"])
        r = sync.sync(a)
        assert r.too_big == [] and r.held == 0, r
        assert outbox_rows(a) == set()
        sync.sync(b)
        sync.sync(a)
        assert snapshot(a) == snapshot(b)


def test_a_whole_chunk_over_the_limit_but_no_row_goes_once_in_halves(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 128 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with Database.open(a, create=False) as db, db.transaction():
            for i in range(1_300):
                db.insert(NOTE, {"title": f"n{i} 東京", "body": "🍣 寿司 " * 60})
        with DeviceStore.open(a) as s:
            parent = s.notes.create("parent")
            for i in range(300):
                s.tags.add(parent["id"], f"tag{i}")
        calls: list[tuple[int, str]] = []

        class Spy(SyncApi):
            def push(self, device: str, entries: list[Any]) -> Any:
                try:
                    out = super().push(device, entries)
                except RequestTooLarge:
                    calls.append((len(entries), "413"))
                    raise
                calls.append((len(entries), "ok"))
                return out

        with api_for(a, srv.home, Spy) as api:
            r = sync.sync(a, api=api)
        assert r.too_big == [] and r.held == 0
        assert r.applied == 1_601 and r.conflicts == 0 and r.superseded == 0
        assert sum(n for n, how in calls if how == "ok") == 1_601
        assert any(how == "413" for _, how in calls)
        assert outbox_rows(a) == set()
        sync.sync(b)
        assert snapshot(a) == snapshot(b)


def test_tiny_limit_2kb_holds_each_big_row_alone_and_the_rest_converges(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 2 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        small_ids, big_ids = [], []
        with DeviceStore.open(a) as s:
            for i in range(40):
                body = "😀" * (600 if i % 4 == 0 else 3)
                n = s.notes.create(f"n{i} 中", body=body, tags=[f"t{i}"])
                s.tasks.create(n["id"], f"task {i}")
                (big_ids if i % 4 == 0 else small_ids).append(n["id"])
        r = sync.sync(a)
        assert sorted(r.too_big) == sorted(f"note {i}" for i in big_ids)
        assert r.held == 3 * len(big_ids)
        sync.sync(b)
        assert waiting(b) == 0
        assert ids(b, "notes") == set(small_ids)
        with DeviceStore.open(a) as s:
            for i in big_ids:
                s.notes.edit(i, body="ok")
        r2 = sync.sync(a)
        assert r2.held == 0
        sync.sync(b)
        sync.sync(a)
        assert snapshot(a) == snapshot(b)


def test_server_sigkilled_during_the_halving_then_sync_again(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DURU_HOME", str(home))
    env = {"DURU_SERVER_MAX_BODY_BYTES": str(128 * KB)}
    srv = Server(pg_url, home, env=env)
    srv.start()
    try:
        a, b = two_devices(tmp_path, srv)
        with Database.open(a, create=False) as db, db.transaction():
            for i in range(800):
                db.insert(NOTE, {"title": f"n{i} 🐱", "body": "猫 " * 150})
        with DeviceStore.open(a) as s:
            big = s.notes.create("big", body=BIG, tags=["b"])
        with api_for(a, home, killing_after_a_half(srv)) as api, pytest.raises(SyncServerError):
            sync.sync(a, api=api)
        srv = restarted(srv, pg_url, home, env)
        r = sync.sync(a)
        assert r.too_big == [f"note {big['id']}"] and r.held == 2
        assert r.conflicts == 0
        sync.sync(b)
        assert len(snapshot(b)["notes"]) == 800
        assert snapshot(b)["sync_conflicts"] == []
        with DeviceStore.open(a) as s:
            s.notes.edit(big["id"], body="short")
        converge(a, b)
        assert snapshot(a)["sync_conflicts"] == []
    finally:
        srv.stop()


def test_two_devices_sync_at_once_through_a_small_limit(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 32 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        for path, tag in ((a, "A"), (b, "B")):
            with Database.open(path, create=False) as db, db.transaction():
                for i in range(400):
                    db.insert(NOTE, {"title": f"{tag}{i} 🦊", "body": "狐 " * 80})
            with DeviceStore.open(path) as s:
                s.notes.create(f"big {tag}", body=BIG, tags=[tag])
        errors: list[BaseException] = []
        reports: dict[str, Any] = {}

        def run(path: Path, name: str) -> None:
            try:
                reports[name] = sync.sync(path)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(p, n)) for p, n in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert reports["a"].held == 2 and reports["b"].held == 2
        sync.sync(a)
        sync.sync(b)
        assert len(snapshot(a)["notes"]) == 801 and len(snapshot(b)["notes"]) == 801
        for path, tag in ((a, "A"), (b, "B")):
            with DeviceStore.open(path) as s:
                n = next(x for x in snapshot(path)["notes"] if x["title"] == f"big {tag}")
                s.notes.edit(n["id"], body="small")
        for _ in range(2):
            sync.sync(a)
            sync.sync(b)
        assert snapshot(a) == snapshot(b)
        assert len(snapshot(a)["notes"]) == 802


def test_cli_sync_json_with_held_rows_is_valid_json_and_exits_1(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, _ = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            big = s.notes.create("big 🐘", body=BIG, tags=["x"])
            s.notes.create("fine")
        done = subprocess.run(
            [sys.executable, "-m", "duru.cli", "sync", "--json", "--db", str(a)],
            env={**os.environ, "DURU_HOME": str(srv.home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        data = json.loads(done.stdout)
        assert data["too_big"] == [f"note {big['id']}"] and data["held"] == 2
        # plain text mode names it on stderr
        done = subprocess.run(
            [sys.executable, "-m", "duru.cli", "sync", "--db", str(a)],
            env={**os.environ, "DURU_HOME": str(srv.home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1
        assert big["id"] in done.stderr


def test_many_resolutions_over_a_small_limit_do_not_wedge_sync(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conflicts queue revision outcomes (sync_resolutions), sent in one POST
    /v1/conflicts/resolve with no chunking and no 413 handling: over the body limit,
    every sync of the device fails from then on (the queue never empties)."""
    with small_server(tmp_path, pg_url, 2 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            notes = [s.notes.create(f"n{i}", body="base")["id"] for i in range(40)]
        sync.sync(a)
        sync.sync(b)
        with DeviceStore.open(a) as s:
            for n in notes:
                s.notes.edit(n, body="from a 🅰")
        with DeviceStore.open(b) as s:
            for n in notes:
                s.notes.edit(n, title="title from b 🅱")
        settle(a, b)


def test_folder_with_a_huge_name_holds_its_subfolders_and_filings(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            f = s.folders.create("📁" * 30_000)
            g = s.folders.create("sub", parent_id=f["id"])
            n = s.notes.create("filed in sub", folder_id=g["id"])
            m = s.notes.create("big and filed", body=BIG, folder_id=f["id"], tags=["z"])
            s.notes.create("free")
        r = sync.sync(a)
        assert sorted(r.too_big) == sorted([f"folder {f['id']}", f"note {m['id']}"])
        assert r.held == 6  # f, g, m, n's filing, m's filing, m's tag
        sync.sync(b)
        assert waiting(b) == 0
        assert {x["title"] for x in snapshot(b)["notes"]} == {"filed in sub", "free"}
        with DeviceStore.open(a) as s:
            s.folders.rename(f["id"], "short")
            s.notes.edit(m["id"], body="short")
        assert sync.sync(a).held == 0
        sync.sync(b)
        sync.sync(a)
        assert snapshot(a) == snapshot(b)
        assert n


def test_held_note_deleted_elsewhere_then_shortened(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            n = s.notes.create("shared", body="small", tags=["old"])
        sync.sync(a)
        sync.sync(b)
        with DeviceStore.open(b) as s:
            s.notes.trash(n["id"])
            s.notes.purge(n["id"])
        sync.sync(b)
        with DeviceStore.open(a) as s:
            s.notes.edit(n["id"], body=BIG)
            s.tags.add(n["id"], "new")
        r = sync.sync(a)
        assert r.too_big == [f"note {n['id']}"]
        with DeviceStore.open(a) as s:
            assert s.notes.get(n["id"])["body"] == BIG  # kept here, not lost
            s.notes.edit(n["id"], body="short now")
        converge(a, b)
        assert any(x["id"] == n["id"] for x in snapshot(b)["notes"])


def test_over_a_thousand_resolutions_do_not_wedge_sync_at_default_limits(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server takes at most MAX_RESOLUTIONS (1,000) per /v1/conflicts/resolve; the
    client sends the whole queue at once. 1,001 rows edited on both devices (a bulk
    edit) leave 1,001 outcomes: every later sync of that device fails with 400."""
    with small_server(tmp_path, pg_url, 32 * 1024 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with Database.open(a, create=False) as db, db.transaction():
            notes = [
                db.insert(NOTE, {"title": f"n{i}", "body": "base"})["id"] for i in range(1_001)
            ]
        sync.sync(a)
        sync.sync(b)
        with Database.open(a, create=False) as db, db.transaction():
            for n in notes:
                db.update(NOTE, n, {"body": "from a"})
        with Database.open(b, create=False) as db, db.transaction():
            for n in notes:
                db.update(NOTE, n, {"title": "from b"})
        settle(a, b)


def test_task_on_a_normal_note_pointing_at_a_held_reminder_and_an_edit_elsewhere(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reminder too big (its body) holds a task of *another* note that points at it
    (reminder_id, SET NULL); the held note's concurrent edit on B merges, no copies."""
    with small_server(tmp_path, pg_url, 64 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            shared = s.notes.create("shared", body="v1")
            host = s.notes.create("host")
        sync.sync(a)
        sync.sync(b)
        with DeviceStore.open(a) as s:
            rem = s.reminders.create(host["id"], remind_at=2_000_000_000_000, body=BIG)
            t = s.tasks.create(shared["id"], "points at the big reminder")
            s.tasks.edit(t["id"], reminder_id=rem["id"])
            s.notes.edit(shared["id"], body=BIG)
        with DeviceStore.open(b) as s:
            s.notes.edit(shared["id"], title="renamed on b 🅱")
        sync.sync(b)
        steps: list[tuple[str, int, int]] = []
        r = sync.sync(a, progress=lambda ph, d, tot: steps.append((ph, d, tot)))
        assert sorted(r.too_big) == sorted([f"reminder {rem['id']}", f"note {shared['id']}"])
        pushes = [(d, tot) for ph, d, tot in steps if ph == "push"]
        assert all(d <= tot for d, tot in pushes), pushes
        sync.sync(b)
        assert waiting(b) == 0
        with DeviceStore.open(a) as s:
            assert s.notes.get(shared["id"])["body"] == BIG
            s.notes.edit(shared["id"], body="short")
            s.reminders.edit(rem["id"], body="short")
        assert sync.sync(a).held == 0
        sync.sync(b)
        sync.sync(a)
        sa, sb = snapshot(a), snapshot(b)
        assert sa == sb
        titles = {n["title"] for n in sa["notes"]}
        assert titles == {"renamed on b 🅱", "host"}, titles


def test_killed_during_halving_then_rows_edited_before_the_next_sync(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Halves the server applied but whose answers never reached the device (killed):
    the rows are edited again here before the next sync. No conflict with itself."""
    home = tmp_path / "home"
    monkeypatch.setenv("DURU_HOME", str(home))
    env = {"DURU_SERVER_MAX_BODY_BYTES": str(128 * KB)}
    srv = Server(pg_url, home, env=env)
    srv.start()
    try:
        a, b = two_devices(tmp_path, srv)
        with Database.open(a, create=False) as db, db.transaction():
            notes = [
                db.insert(NOTE, {"title": f"n{i} 🐱", "body": "猫 " * 150})["id"]
                for i in range(600)
            ]
        with api_for(a, home, killing_after_a_half(srv)) as api, pytest.raises(SyncServerError):
            sync.sync(a, api=api)
        with Database.open(a, create=False) as db, db.transaction():
            for n in notes:
                db.update(NOTE, n, {"body": "edited after the kill 🔪"})
        srv = restarted(srv, pg_url, home, env)
        r = sync.sync(a)
        assert r.conflicts == 0 and r.held == 0, r
        sync.sync(b)
        sync.sync(a)
        sa = snapshot(a)
        assert sa == snapshot(b)
        assert len(sa["notes"]) == 600 and sa["sync_conflicts"] == []
        assert {n["body"] for n in sa["notes"]} == {"edited after the kill 🔪"}
    finally:
        srv.stop()


def test_a_small_row_with_many_ops_goes_under_a_tiny_limit(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a body limit of a few KB, a tiny row edited 70 times between syncs carries
    64 op ids (2.4 KB): refused alone, it goes again with its newest op id only. It was
    held as "too big" for good, and shortening it only added an op."""
    with small_server(tmp_path, pg_url, 2 * KB, monkeypatch) as srv:
        a, b = two_devices(tmp_path, srv)
        with DeviceStore.open(a) as s:
            n = s.notes.create("tiny")
            for i in range(70):
                s.notes.edit(n["id"], body=f"v{i}")
        r = sync.sync(a)
        assert (r.too_big, r.held, r.conflicts) == ([], 0, 0)
        sync.sync(b)
        with DeviceStore.open(b) as s:
            assert s.notes.get(n["id"])["body"] == "v69"
