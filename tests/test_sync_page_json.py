"""A pull page written as JSON by PostgreSQL (``read_page_json``, what ``GET /v1/changes``
sends) carries exactly the changes and values of ``read_page`` (encoded in Python).

Real server process, real PostgreSQL, real SQLite devices: rows of many entities, some
deleted (tombstones), a conflict revision, pages of several sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from duru import sync
from duru.bridge import codec_for
from duru.crypto import KdfParams
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import BY_NAME
from duru.remote.layout import server_table
from duru.server import read_page
from duru.server.pull import read_page_json
from duru.sync.credentials import Credentials
from duru.sync.wire import decode_row

PASS = "correct horse battery"


@pytest.fixture
def server_url(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DURU_HOME", str(home))
    env = {**os.environ, "DURU_DATABASE_URL": pg_url, "DURU_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "duru.cli", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line
    yield line.split("listening on ")[1].split()[0]
    proc.terminate()
    proc.wait(15)
    proc.stdout.close()


def _fill(a: Path, b: Path) -> None:
    with DeviceStore.open(a) as s:
        work = s.folders.create("Work ünïcode")
        s.folders.create("Deep 深い", parent_id=work["id"])
        n1 = s.notes.create("東京 meeting 🎉", body="会議\n" * 50, tags=["work", "中文"])
        s.notes.create('quotes " and \\ and \u2028 and \t', body="x" * 3000)
        n3 = s.notes.create("to purge", folder_id=work["id"])
        s.tasks.create(n1["id"], "book room")
        s.reminders.create(n1["id"], remind_at=1_700_000_000_123)
        s.saved_searches.create("saved", "meeting")
        s.links.add(n1["id"], "quotes")
    sync.sync(a)
    sync.sync(b)
    with DeviceStore.open(a) as s:
        s.tags.remove(n1["id"], "work")
        s.notes.trash(n3["id"])
        s.notes.purge(n3["id"])
        s.notes.edit(n1["id"], title="edited on a")
    with DeviceStore.open(b) as s:
        s.notes.edit(n1["id"], title="edited on b")  # a conflict once both push
    sync.sync(a)
    sync.sync(b)


def _account_with_rows(tmp_path: Path, server_url: str) -> Credentials:
    """Two devices of one account, filled and synced (``_fill``); the first's credentials."""
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    Database.open(a).close()
    Database.open(b).close()
    kdf = KdfParams.interactive()
    saved = sync.register(a, server=server_url, user="ada", passphrase=PASS, kdf=kdf)
    sync.login(b, server=server_url, user="ada", passphrase=PASS)
    _fill(a, b)
    return saved


def _decoded(change: dict[str, object]) -> dict[str, object]:
    """A change with its row as psycopg values (the wire form need not match byte for byte)."""
    out = dict(change)
    row = change["row"]
    # Conflict revisions are encoded in Python on both paths: compared as they are.
    if row is not None and change["kind"] != "conflict":
        e = BY_NAME[str(change["entity"])]
        out["row"] = decode_row(server_table(e), row, codec_for(e).columns)
    return out


def test_the_json_page_holds_what_read_page_holds(
    tmp_path: Path, pg_url: str, server_url: str
) -> None:
    saved = _account_with_rows(tmp_path, server_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        head = read_page(conn, saved.user_id, 0, 5000).head
        kinds = {c.kind for c in read_page(conn, saved.user_id, 0, 5000).changes}
        assert kinds == {"upsert", "delete", "conflict"}
        for limit in (1, 3, 7, 5000):
            after, pages = 0, 0
            while True:
                page = read_page(conn, saved.user_id, after, limit)
                body, count = read_page_json(conn, saved.user_id, after, limit)
                got = json.loads(body)
                assert count == len(got["changes"]) == len(page.changes)
                assert [_decoded(c) for c in got["changes"]] == [
                    _decoded(c.to_json()) for c in page.changes
                ]
                assert (got["cursor"], got["head"], got["more"]) == (
                    page.cursor,
                    page.head,
                    page.more,
                )
                after, pages = page.cursor, pages + 1
                if not page.more:
                    break
            assert after == head and pages >= (1 if limit == 5000 else 2)
        body, count = read_page_json(conn, saved.user_id, head, 10)
        assert count == 0
        assert json.loads(body) == {"changes": [], "cursor": head, "head": head, "more": False}


def test_every_row_postgresql_writes_opens_the_one_pass_way(
    tmp_path: Path, pg_url: str, server_url: str
) -> None:
    """The rows of a page as PostgreSQL writes them need no general way: the one-pass
    opener (``EntityCodec.from_wire``) takes each, and gives what the general way gives.
    (If it declined them all, a first pull would silently run at the old speed.)"""
    saved = _account_with_rows(tmp_path, server_url)
    keys = saved.keys()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        body, _ = read_page_json(conn, saved.user_id, 0, 5000)
    upserts = [c for c in json.loads(body)["changes"] if c["kind"] == "upsert"]
    assert {c["entity"] for c in upserts} >= {"note", "folder", "note_tag", "task", "reminder"}
    for c in upserts:
        e = BY_NAME[c["entity"]]
        codec = codec_for(e)
        fast = codec.from_wire(c["row"], keys)
        assert fast is not None, c
        assert fast == codec.to_local(decode_row(server_table(e), c["row"], codec.columns), keys)
