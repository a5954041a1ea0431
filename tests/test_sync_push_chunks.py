"""How a big push is cut into chunks: they grow while the server keeps up, and the last
ones taper, so the chunk the device waits on with nothing to overlap is small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_sync
from test_sync import Server, snapshot, two_devices

from duru import sync
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import NOTE
from duru.sync.client import DEFAULT_PUSH_CHUNK, TAPER_FLOOR
from duru.sync.credentials import load
from duru.sync.http import SyncApi

# The `duru serve` fixtures of test_sync (a fixture is found by its name in the module).
home = test_sync.home
server = test_sync.server


class CountingApi(SyncApi):
    """The real client, noting the size of each push it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: list[int] = []

    def push(self, device: str, entries: list[Any]) -> Any:
        self.sizes.append(len(entries))
        return super().push(device, entries)


def test_a_big_push_grows_its_chunks_then_tapers_and_loses_nothing(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a, b = two_devices(tmp_path, server)
    total = 2_600
    with Database.open(a, create=False) as db, db.transaction():
        for i in range(total):
            db.insert(NOTE, {"title": f"note {i} 笔记 🗒", "body": "body " * 20})
        device = str(db.meta("device_id"))
    saved = load(home, device)
    with CountingApi(saved.server, token=saved.token) as api:
        report = sync.sync(a, api=api)
    assert report.pushed == report.applied == total
    sizes = api.sizes
    assert sum(sizes) == total
    assert sizes[0] == DEFAULT_PUSH_CHUNK
    assert max(sizes) > DEFAULT_PUSH_CHUNK  # grew while the server kept up
    assert sizes[-1] <= TAPER_FLOOR  # and the last one is small
    tail = sizes[sizes.index(max(sizes)) :]
    assert tail == sorted(tail, reverse=True)  # shrinking from there on
    sync.sync(b)
    assert snapshot(a) == snapshot(b)


def test_a_one_row_push_is_one_request(tmp_path: Path, server: Server, home: Path) -> None:
    a, _ = two_devices(tmp_path, server)
    with Database.open(a, create=False) as db:
        db.insert(NOTE, {"title": "one", "body": ""})
        device = str(db.meta("device_id"))
    saved = load(home, device)
    with CountingApi(saved.server, token=saved.token) as api:
        sync.sync(a, api=api)
    assert api.sizes == [1]


def test_a_server_that_takes_small_bodies_gets_the_push_in_halves_and_holds_a_big_row(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server (or a proxy before it) with a 256 KB body limit: chunks it refuses (413)
    go again in halves, and a note over the limit on its own stays here with its tag
    and task, named in the report; everything else reaches the other device."""
    home = tmp_path / "home"
    small = Server(pg_url, home, env={"DURU_SERVER_MAX_BODY_BYTES": str(256 * 1024)})
    small.start()
    try:
        monkeypatch.setenv("DURU_HOME", str(home))
        a, b = two_devices(tmp_path, small)
        with Database.open(a, create=False) as db, db.transaction():
            for i in range(1_500):
                db.insert(NOTE, {"title": f"note {i} 메모", "body": "본문 " * 150})
        with DeviceStore.open(a) as s:
            big = s.notes.create("big one", body="큰 " * 150_000, tags=["huge"])
            s.tasks.create(big["id"], "under the big one")
        report = sync.sync(a)
        assert report.too_big == [f"note {big['id']}"]
        assert report.held == 3  # the note, its tag, its task
        assert report.applied == 1_500
        sync.sync(b)
        notes = {n["title"] for n in snapshot(b)["notes"]}
        assert len(notes) == 1_500 and "big one" not in notes
        again = sync.sync(a)  # held again, nothing else to send, no error
        assert again.too_big == [f"note {big['id']}"] and again.pushed == 0
    finally:
        small.stop()


class PullCountingApi(SyncApi):
    """The real client, counting the pages of changes it asks for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pulls = 0

    def changes(self, after: int, limit: int) -> Any:
        self.pulls += 1
        return super().changes(after, limit)


def _counted_sync(path: Path, home: Path) -> tuple[Any, int]:
    with Database.open(path, create=False) as db:
        device = str(db.meta("device_id"))
    saved = load(home, device)
    with PullCountingApi(saved.server, token=saved.token) as api:
        return sync.sync(path, api=api), api.pulls


def test_a_push_with_nothing_else_new_skips_the_pull_and_a_push_after_others_pulls(
    tmp_path: Path, server: Server, home: Path
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("first", body="x")
        s.notes.create("second", body="y", tags=["t"])
    report, pulls = _counted_sync(a, home)
    assert pulls == 0 and report.cursor == report.head > 0, report  # only its own rows
    report, pulls = _counted_sync(b, home)
    assert pulls == 1 and report.pulled > 0
    with DeviceStore.open(a) as s:
        s.notes.edit(note["id"], body="edited on a")
    with DeviceStore.open(b) as s:
        s.notes.create("from b")
    sync.sync(a)
    report, pulls = _counted_sync(b, home)  # a's edit came between: b must pull it
    assert pulls >= 1 and report.pulled >= 1, report
    sync.sync(a)
    assert snapshot(a) == snapshot(b)
