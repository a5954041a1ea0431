"""A sync keeps the full-text index's merges out of its commits (the round-trip tail), and
still leaves a device whose search is quick: a big pull merges what it wrote, and
`duru sync` does the housekeeping after its report."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_sync
from test_sync import Server, two_devices
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
import duru.cli.device
from duru import sync
from duru.cli import app
from duru.errors import StoreError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.local.housekeeping import USER_MERGE, IndexShape, index_shape, verify_index
from duru.model import NOTE
from duru.sync import client

# The `duru serve` fixtures of test_sync (a fixture is found by its name in the module).
home = test_sync.home
server = test_sync.server


def _shape(path: Path) -> IndexShape:
    with Database.open(path, create=False) as db:
        return index_shape(db.conn)


def _found(path: Path, text: str) -> list[str]:
    with DeviceStore.open(path) as store:
        return [h.title for h in store.search.query(text)]


def _edit_rounds(a: Path, b: Path, note_id: str, rounds: int) -> None:
    for i in range(rounds):
        with Database.open(a, create=False) as db:
            # Many new words a round: FTS5's automerge works once per 64 leaf pages
            # written, so each round writes a dozen pages (the default merges by round 8).
            words = " ".join(f"w{i}x{k}" for k in range(2000))
            db.update(NOTE, note_id, {"title": f"round {i} 第{i}回", "body": words})
        sync.sync(a)
        assert sync.sync(b).pulled == 1


def test_pulled_edits_add_index_segments_without_merging_them_in_the_commit(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("first", body="body")
    sync.sync(a)
    sync.sync(b)
    before = _shape(b)
    _edit_rounds(a, b, note["id"], 12)
    # FTS5's default would have merged level 0 every 4 segments inside one of these
    # commits; each pull now adds its segment and leaves merging to housekeeping.
    assert _shape(b).level0 >= before.level0 + 12
    with Database.open(b, create=False) as db:
        assert verify_index(db) == 0  # results never depend on merge state
    assert _found(b, "第11回") == ["round 11 第11回"]


def test_a_big_pull_merges_the_index_segments_it_wrote(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "INITIAL_PULL_PAGE", 8)  # one segment per page of 8 rows
    monkeypatch.setattr(client, "MERGE_AFTER_PULLED", 40)
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        for i in range(60):
            s.notes.create(f"note {i} ノート", body=f"body {i} 🎉")
    sync.sync(a)
    report = sync.sync(b)
    assert report.pulled >= 60
    shape = _shape(b)
    assert shape.level0 < USER_MERGE and not shape.merging, shape
    assert len(_found(b, "ノート")) == 20  # the search's default limit
    with Database.open(b, create=False) as db:
        assert verify_index(db) == 0


def test_duru_sync_merges_after_its_report(tmp_path: Path, server: Server) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        note = s.notes.create("first", body="body")
    sync.sync(a)
    sync.sync(b)
    _edit_rounds(a, b, note["id"], 6)
    assert _shape(b).level0 >= 6
    result = CliRunner().invoke(app, ["sync", "--db", str(b)])
    assert result.exit_code == 0, result.output
    assert "pushed 0, pulled 0" in result.output
    assert _shape(b).level0 < USER_MERGE
    assert _found(b, "round") == ["round 5 第5回"]


def test_duru_sync_reports_a_failed_housekeeping_and_still_exits_zero(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        s.notes.create("pulled anyway", body="body")
    sync.sync(a)

    def disk_full(_: Database) -> None:
        raise StoreError(f"{b}: the disk is full (database or disk is full); free some space")

    # Fault injection: the merge after the sync hits a full disk.
    monkeypatch.setattr(duru.cli.device, "maintain", disk_full)
    result = CliRunner().invoke(app, ["sync", "--db", str(b)])
    assert result.exit_code == 0, result.output
    assert "synced; housekeeping postponed" in result.output
    assert _found(b, "pulled") == ["pulled anyway"]
