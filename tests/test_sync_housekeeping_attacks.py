"""Hostile tests of sync's housekeeping and push plumbing: the index merges a pull leaves
(and the one after a big pull), `duru sync`'s housekeeping after its report, tapered push
chunks, a row too big to send, and the ids the server turns into array literals.

Real parts only: `duru serve` on loopback over the embedded PostgreSQL, real SQLite files,
real HTTP; faults are real locks held by another connection or process.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_sync
import test_sync_attacks
from test_sync import Server, snapshot, two_devices
from test_sync_attacks import Target, assert_json_error, fresh, push_body
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
import duru.cli.device
import duru.cli.sync
from duru import sync
from duru.cli import app
from duru.local import DeviceStore
from duru.local.db import Database
from duru.local.housekeeping import verify_index
from duru.model import NOTE
from duru.sync import client

# The `duru serve` fixtures of test_sync and test_sync_attacks (found by name).
home = test_sync.home
server = test_sync.server
target = test_sync_attacks.target

DURU = str(Path(sys.executable).with_name("duru"))


def _found(path: Path, text: str, limit: int = 100) -> list[str]:
    with DeviceStore.open(path) as store:
        return sorted(h.title for h in store.search.query(text, limit=limit))


# -- the server's array literals: hostile id spellings straight over HTTP ------------------


def _lenient(canonical: str) -> list[str]:
    """Spellings uuid.UUID() reads as some uuid that are not a uuid's text at all."""
    hexed = canonical.replace("-", "")
    return [
        " " + hexed[:31],  # a leading blank: int(..., 16) skips it
        "+" + hexed[:31],  # a sign
        hexed[:4] + "_" + hexed[5:],  # a digit separator
        hexed[:31] + "\n",  # a trailing newline
        "".join("٠١٢٣٤٥٦٧٨٩"[int(c)] if c.isdigit() else c for c in canonical),  # Arabic-Indic
    ]


@pytest.mark.parametrize("which", ["op_ids", "row_id"])  # row_id holds: the row's key wins
def test_an_id_that_is_not_a_uuids_text_is_refused_not_read_as_another_uuid(
    target: Target, which: str
) -> None:
    """canonical_id falls back to uuid.UUID(), whose int(hex, 16) takes a blank, a sign,
    an underscore or a newline: the server then acts on a *different* uuid than any
    spelling of what was sent (" 0123...cde" -> 00123456-789a-...), and answers with that
    id, which the sender never sent. Such ids should be a 400 like "op-1" is."""
    taken: list[str] = []
    for spelling in _lenient(str(uuid.uuid4())):
        e = fresh(target.note)
        if which == "op_ids":
            e["op_ids"] = [spelling]
        else:
            e["row_id"] = spelling
        r = push_body(target, [e])
        if r.status_code == 200:
            answer = r.json()["results"][0]
            taken.append(f"{spelling!r} -> {answer['op_id']} / {answer['row_id']}")
        else:
            assert_json_error(r, 400)
    assert not taken, f"accepted as other uuids: {taken}"


@pytest.mark.parametrize(
    "spelling",
    [
        lambda u: u.upper(),
        lambda u: "{" + u + "}",
        lambda u: u.replace("-", ""),
        lambda u: "urn:uuid:" + u,
    ],
    ids=["upper", "braces", "no-hyphens", "urn"],
)
def test_other_spellings_of_one_uuid_land_under_that_uuid_once(
    target: Target, spelling: Any
) -> None:
    """Normalised on purpose: the same uuid, stored once, answered in canonical form; a
    retry in the canonical spelling is a duplicate (no second row)."""
    e = fresh(target.note)
    op = str(uuid.uuid4())
    e["op_ids"] = [spelling(op)]
    r = push_body(target, [e])
    assert r.status_code == 200, r.text
    first = r.json()["results"][0]
    assert first["op_id"] == op and first["outcome"] == "applied"
    e["op_ids"] = [op]
    again = push_body(target, [e]).json()["results"][0]
    assert again["outcome"] == "duplicate" and again["version"] == first["version"]


@pytest.mark.parametrize(
    "bad",
    [
        '{"a,b"}',
        "0123,4567-89ab-cdef-0123-456789abcdef",
        '01234567-89ab-cdef-0123-456789abcde"',
        "01234567-89ab-cdef-0123-456789abcdef,01234567-89ab-cdef-0123-456789abcdef",
        "{01234567-89ab-cdef-0123-456789abcdef},{01234567-89ab-cdef-0123-456789abcdef}",
        "NULL",
        "}",
        "01234567-89ab-cdef-0123-456789abcdéf",
    ],
)
@pytest.mark.parametrize("where", ["op_ids", "row_id"])
def test_ids_that_would_break_an_array_literal_are_a_400(
    target: Target, bad: str, where: str
) -> None:
    e = fresh(target.note)
    if where == "op_ids":
        e["op_ids"] = [bad]
    else:
        e["row_id"] = bad
    assert_json_error(push_body(target, [e]), 400)
    assert httpx.get(f"{target.server.url}/v1/health", timeout=10).status_code == 200


@pytest.mark.parametrize("name", ["note,folder", "note}", '"note"', "NOTE", "note\x00", "note "])
def test_entity_names_that_would_break_a_word_literal_are_a_400(target: Target, name: str) -> None:
    e = fresh(target.note)
    e["entity"] = name
    assert_json_error(push_body(target, [e]), 400)


# -- sync's post-pull merge against a lock held by another connection ---------------------


class Locker:
    """Another connection that takes the write lock and holds it for ``seconds``
    (longer than the 5 s busy_timeout), as an app in a long write transaction does."""

    def __init__(self, path: Path, seconds: float = 6.5) -> None:
        self.path, self.seconds = path, seconds
        self.thread: threading.Thread | None = None

    def take(self) -> None:
        if self.thread is not None:
            return
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")

        def hold() -> None:
            time.sleep(self.seconds)
            conn.execute("ROLLBACK")
            conn.close()

        self.thread = threading.Thread(target=hold, daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _big_pull_setup(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch, notes: int = 60
) -> tuple[Path, Path]:
    monkeypatch.setattr(client, "INITIAL_PULL_PAGE", 8)  # a segment per page of 8 rows
    monkeypatch.setattr(client, "MERGE_AFTER_PULLED", 40)
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        for i in range(notes):
            s.notes.create(f"note {i} ノート", body=f"body {i} 🎉")
    sync.sync(a)
    return a, b


def _lock_after_last_page(monkeypatch: pytest.MonkeyPatch, locker: Locker) -> None:
    """When the pull reports its last page (committed), another connection takes the lock."""
    real = client._report

    def report(progress: Any, phase: str, done: int, total: int) -> None:
        real(progress, phase, done, total)
        if phase == "pull" and done >= total > 1:
            locker.take()

    monkeypatch.setattr(client, "_report", report)


def test_a_lock_during_the_post_pull_merge_does_not_fail_a_sync_that_pulled_everything(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pull has committed every page and its cursor; the merge after it is housekeeping.
    A writer holding the lock past busy_timeout then makes sync() raise a raw
    sqlite3.OperationalError ('database is locked'): the caller loses the report and
    thinks the sync failed. Expected: the report (the merge postponed), or at worst
    duru's retryable StoreError."""
    _, b = _big_pull_setup(tmp_path, server, monkeypatch)
    locker = Locker(b)
    _lock_after_last_page(monkeypatch, locker)
    try:
        report = sync.sync(b)
    except sqlite3.Error as exc:
        pytest.fail(f"sync() that pulled everything raised {type(exc).__name__}: {exc}")
    finally:
        locker.join()
    assert report.pulled >= 60
    assert len(_found(b, "ノート")) == 60


def test_duru_sync_with_a_lock_during_the_post_pull_merge_exits_zero_without_a_traceback(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`duru sync`: everything pulled and committed, then the merge inside sync() meets a
    lock. The CLI's `reported()` maps duru's errors and OSError, not sqlite3.Error, so the
    user gets an uncaught OperationalError (a traceback) and exit 1 for a sync that
    worked; the promise is "duru: synced; housekeeping postponed: ..." and exit 0."""
    _, b = _big_pull_setup(tmp_path, server, monkeypatch)
    locker = Locker(b)
    _lock_after_last_page(monkeypatch, locker)
    try:
        result = CliRunner().invoke(app, ["sync", "--db", str(b)])
    finally:
        locker.join()
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 0, result.output
    assert "housekeeping postponed" in result.output
    assert len(_found(b, "ノート")) == 60


# -- `duru sync`'s housekeeping: --json, --watch, a real lock --------------------------------


def _maintain_against_a_lock(path: Path) -> Any:
    """duru.cli.device.maintain, run while another connection holds the write lock: the
    real SQLite 'database is locked' (busy_timeout 0, so no 5 s wait)."""
    from duru.local.maintenance import maintain as real

    def locked(db: Database) -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            db.conn.execute("PRAGMA busy_timeout = 0")
            # Level 0 must hold segments for a merge step to want the lock.
            real(db)
        finally:
            other.execute("ROLLBACK")
            other.close()

    return locked


def _segments_on(a: Path, b: Path, rounds: int) -> None:
    with DeviceStore.open(a) as s:
        note = s.notes.create("first", body="body")
    sync.sync(a)
    sync.sync(b)
    for i in range(rounds):
        with Database.open(a, create=False) as db:
            db.update(NOTE, note["id"], {"title": f"round {i}", "body": f"w{i} " * 500})
        sync.sync(a)
        assert sync.sync(b).pulled == 1


def _json_stream(text: str) -> list[Any]:
    """The JSON documents printed one after another (and nothing else) on ``text``."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        doc, at = decoder.raw_decode(text, at)
        out.append(doc)


def _housekeeping_meets_a_lock(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """Devices a and b, b's index with segments to merge, and its housekeeping locked out."""
    a, b = two_devices(tmp_path, server)
    _segments_on(a, b, 5)
    monkeypatch.setattr(duru.cli.device, "maintain", _maintain_against_a_lock(b))
    return a, b


def test_duru_sync_json_stays_json_on_stdout_when_housekeeping_meets_a_lock(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = _housekeeping_meets_a_lock(tmp_path, server, monkeypatch)
    result = CliRunner().invoke(app, ["sync", "--json", "--db", str(b)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["pulled"] == 0
    assert "duru: synced; housekeeping postponed" in result.stderr
    assert "locked" in result.stderr


def test_duru_sync_watch_keeps_going_when_housekeeping_fails_every_round(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _housekeeping_meets_a_lock(tmp_path, server, monkeypatch)
    rounds = []

    def sleep(_: float) -> None:
        rounds.append(1)
        if len(rounds) == 3:
            raise KeyboardInterrupt
        with DeviceStore.open(a) as s:  # something to pull next round
            s.notes.create(f"watch {len(rounds)}")
        sync.sync(a)

    monkeypatch.setattr(duru.cli.sync, "time", type("T", (), {"sleep": staticmethod(sleep)}))
    result = CliRunner().invoke(app, ["sync", "--json", "--watch", "--every", "0", "--db", str(b)])
    assert len(rounds) == 3, result.output
    docs = _json_stream(result.stdout)
    assert [d["pulled"] for d in docs] == [0, 1, 1], result.stdout
    assert result.stderr.count("housekeeping postponed") == 3, result.stderr
    assert _found(b, "watch") == ["watch 1", "watch 2"]


# -- many small pulls with no housekeeping: past FTS5's crisis merge ----------------------


def test_past_256_pulled_syncs_without_housekeeping_search_stays_right(
    tmp_path: Path, server: Server
) -> None:
    """Every pull adds a level-0 segment (automerge 0) and nobody merges (library sync,
    no store, no `duru sync`): at 256 the crisis merge runs inside a pull's commit."""
    from duru.local.housekeeping import CRISIS_MERGE, index_shape

    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        s.notes.create("keeper 保持", body="stays")
        note = s.notes.create("first", body="body")
    sync.sync(a)
    sync.sync(b)
    most = 0
    with Database.open(a, create=False) as da, Database.open(b, create=False) as db:
        for i in range(CRISIS_MERGE + 20):
            da.update(NOTE, note["id"], {"title": f"round r{i}x 第{i}回", "body": f"zz{i} 🎉"})
            sync.sync(a)
            assert sync.sync(b).pulled == 1
            most = max(most, index_shape(db.conn).level0)
            if i % 64 == 63:
                assert verify_index(db) == 0, i
        assert verify_index(db) == 0
    assert most <= CRISIS_MERGE
    last = CRISIS_MERGE + 19
    assert _found(b, f"r{last}x") == [f"round r{last}x 第{last}回"]
    assert _found(b, f"r{last - 1}x") == []
    assert _found(b, "保持") == ["keeper 保持"]
    assert snapshot(a)["notes"] == snapshot(b)["notes"]


# -- SIGKILL during the post-pull merge -------------------------------------------------------

KILLED_MERGE = r"""
import sys
from duru import sync
from duru.sync import client
from duru.local import housekeeping

client.INITIAL_PULL_PAGE = 50   # many segments
client.MERGE_AFTER_PULLED = 100
client.BULK_MERGE_PAGES = 4     # a long run of small merge steps to be killed in
real = housekeeping.merge_step
steps = 0

def announced(conn, pages):
    global steps
    steps += 1
    print("step", steps, flush=True)  # then the real step: the kill lands in it
    return real(conn, pages)

housekeeping.merge_step = announced
report = sync.sync(sys.argv[1])
print("done", report.pulled, flush=True)
"""


def test_a_sync_killed_in_its_post_pull_merge_loses_nothing_and_search_works(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    total = 800
    with Database.open(a, create=False) as db, db.transaction():
        for i in range(total):
            words = " ".join(f"k{i}w{j}" for j in range(40))
            db.insert(NOTE, {"title": f"note n{i}q 笔记", "body": f"{words} 🗒"})
    sync.sync(a)
    script = tmp_path / "killed_merge.py"
    script.write_text(KILLED_MERGE, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(b)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = ""
        while line != "step 5\n":
            line = proc.stdout.readline()
            assert line.startswith("step"), line
        proc.kill()
    finally:
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -9  # killed in the merge, not finished before it
    with Database.open(b, create=False) as db:
        assert verify_index(db) == 0
    again = subprocess.run(
        [DURU, "sync", "--json", "--db", str(b)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["pulled"] == 0
    with Database.open(b, create=False) as db:
        assert verify_index(db) == 0
        assert db.conn.execute("SELECT count(*) FROM notes").fetchone()[0] == total
    found = subprocess.run(
        [DURU, "search", "n799q", "--json", "--db", str(b)], capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    assert [h["title"] for h in json.loads(found.stdout)] == ["note n799q 笔记"]
    assert len(_found(b, "笔记", limit=1000)) == total
    assert snapshot(a)["notes"] == snapshot(b)["notes"]


# -- a DeviceStore with its Maintainer open in the same process while sync() runs -----------


def test_a_store_with_its_maintainer_open_beside_syncs_with_post_pull_merges(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "INITIAL_PULL_PAGE", 40)
    monkeypatch.setattr(client, "PULL_PAGE", 40)
    monkeypatch.setattr(client, "MERGE_AFTER_PULLED", 100)  # every round below merges
    a, b = two_devices(tmp_path, server)
    sync.sync(b)
    store = DeviceStore.open(b, background=True)
    made: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        try:
            while not stop.is_set():
                made.append(store.notes.create(f"local l{i}z ローカル", body="x " * 200)["id"])
                if i % 7 == 0:
                    store.search.query("ローカル")
                i += 1
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for r in range(4):
            with Database.open(a, create=False) as db, db.transaction():
                for i in range(150):
                    words = " ".join(f"r{r}k{i}w{j}" for j in range(30))
                    db.insert(NOTE, {"title": f"remote r{r}n{i}q リモート", "body": words})
            sync.sync(a)
            report = sync.sync(b)
            assert report.pulled >= 150
    finally:
        stop.set()
        writer.join()
        store.close()  # raises what stopped the maintainer, if anything did
    assert not errors, errors
    sync.sync(b)
    sync.sync(a)
    with Database.open(b, create=False) as db:
        assert verify_index(db) == 0
    assert len(_found(b, "リモート", limit=1000)) == 600
    assert len(_found(b, "ローカル", limit=100_000)) == len(made)
    assert snapshot(a)["notes"] == snapshot(b)["notes"]


# -- tapered pushes with big CJK / emoji notes ---------------------------------------------


def test_big_cjk_emoji_notes_among_many_small_ones_push_in_tapered_chunks_and_converge(
    tmp_path: Path, server: Server, home: Path
) -> None:
    """Notes of ~3 MB (about 2.7 M characters, wire ~4 MB each) between 700 small ones:
    chunks cut by MAX_CHUNK_BYTES and by the taper; nothing lost, both devices equal."""
    from test_sync_push_chunks import CountingApi

    from duru.sync.credentials import load

    a, b = two_devices(tmp_path, server)
    piece = "東京の会議🎉 notes ✓ "  # 3-byte, 4-byte and 1-byte characters
    big = [piece * (180_000 + 1000 * i) for i in range(5)]
    with Database.open(a, create=False) as db, db.transaction():
        for i in range(700):
            db.insert(NOTE, {"title": f"small s{i}q 小さい", "body": "本文 🗒 " * 10})
            if i % 140 == 0:
                db.insert(NOTE, {"title": f"big b{i // 140}q 大きい", "body": big[i // 140]})
        device = str(db.meta("device_id"))
    saved = load(home, device)
    with CountingApi(saved.server, token=saved.token) as api:
        report = sync.sync(a, api=api)
    assert report.pushed == report.applied == 705, report
    assert sum(api.sizes) == 705
    sync.sync(b)
    snap_a, snap_b = snapshot(a), snapshot(b)
    assert snap_a["notes"] == snap_b["notes"]
    bodies = sorted(n["body"] for n in snap_b["notes"] if n["title"].startswith("big"))
    assert bodies == sorted(big)
    assert len(_found(b, "大きい")) == 5
    assert len(_found(b, "小さい", limit=1000)) == 700


def test_one_note_too_big_for_the_servers_body_limit_does_not_block_every_other_change(
    tmp_path: Path, server: Server
) -> None:
    """A 26 M-character note seals to a wire row over the server's 32 MiB body limit: the
    push is a 413 every time, and as the outbox goes out in order before the pull, the
    device can then neither push its other edits nor pull anyone else's, for good.
    Expected: the push leaves that one row here, names it, and the sync carries on
    with everything else."""
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(b) as s:
        s.notes.create("from b", body="waiting to reach a")
    sync.sync(b)
    with DeviceStore.open(a) as s:
        huge = s.notes.create("huge", body="x" * 26_000_000)
        s.notes.create("small after it", body="should still sync")
    report = sync.sync(a)
    assert report.too_big == [f"note {huge['id']}"]
    assert _found(a, "waiting") == ["from b"], "a pulls nothing, its outbox stuck"
    sync.sync(b)
    assert _found(b, "still") == ["small after it"], "a's other notes never leave it"


def test_a_row_too_big_to_send_is_named_held_with_its_rows_and_sent_once_shortened(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    with DeviceStore.open(a) as s:
        huge = s.notes.create("huge 巨大", body="字" * 9_000_000, tags=["big"])
        s.tasks.create(huge["id"], "a task under it")
        s.notes.create("beside it", body="goes")
    result = CliRunner().invoke(app, ["sync", "--db", str(a)])
    assert result.exit_code == 1, result.output  # the rest synced; one row needs a look
    assert f"note {huge['id']}" in result.stderr
    assert "too big to send" in result.stderr
    report = sync.sync(a)
    assert report.too_big == [f"note {huge['id']}"] and report.held >= 3  # note, tag, task
    sync.sync(b)
    assert _found(b, "beside") == ["beside it"] and _found(b, "huge") == []
    with DeviceStore.open(a) as s:
        s.notes.edit(huge["id"], body="short now")
    report = sync.sync(a)
    assert report.too_big == [] and report.held == 0
    sync.sync(b)
    assert _found(b, "huge") == ["huge 巨大"]
    assert snapshot(a)["tasks"] == snapshot(b)["tasks"]
    assert snapshot(a)["note_tags"] == snapshot(b)["note_tags"]


# -- two devices of one account pushing at once, a third pulling meanwhile -----------------


def test_two_devices_pushing_tapered_chunks_at_once_and_a_third_pulling_converge(
    tmp_path: Path, server: Server
) -> None:
    a, b = two_devices(tmp_path, server)
    c = test_sync.device(tmp_path, "c")
    sync.login(c, server=server.url, user="ada", passphrase=test_sync.PASS)
    each = 1_300
    for path, who in ((a, "a"), (b, "b")):
        with Database.open(path, create=False) as db, db.transaction():
            for i in range(each):
                db.insert(NOTE, {"title": f"{who} {who}{i}q 同時 😀", "body": f"{who} body {i}"})
    errors: list[BaseException] = []
    done = threading.Event()

    def run(path: Path) -> None:
        try:
            sync.sync(path)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def pull_meanwhile() -> None:
        try:
            while not done.is_set():
                sync.sync(c)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pushers = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
    puller = threading.Thread(target=pull_meanwhile)
    puller.start()
    for t in pushers:
        t.start()
    for t in pushers:
        t.join()
    done.set()
    puller.join()
    assert not errors, errors
    for p in (a, b, c):
        sync.sync(p)
    snaps = [snapshot(p)["notes"] for p in (a, b, c)]
    assert len(snaps[0]) == 2 * each
    assert snaps[0] == snaps[1] == snaps[2]
    for p in (a, b, c):
        with Database.open(p, create=False) as db:
            assert verify_index(db) == 0
    assert len(_found(c, "同時", limit=10_000)) == 2 * each


# -- `duru sync` whose housekeeping meets a read-only file system --------------------------


def _mounted(where: Path) -> Any:
    from test_faults_device import can_mount, tmpfs

    if not can_mount():
        pytest.skip("mounting a tmpfs needs root")
    return tmpfs(where, 8192)


def test_duru_sync_exits_zero_when_its_housekeeping_finds_the_file_system_read_only(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync committed; then the file system turns read-only (a remount, a failing
    disk) before the housekeeping. `_housekeeping` opens the database outside
    housekeeping()'s try: the failure there is not "synced; housekeeping postponed"."""
    import subprocess as sp

    a = test_sync.device(tmp_path, "a")
    sync.register(a, server=server.url, user="ada", passphrase=test_sync.PASS, kdf=test_sync.KDF)
    with DeviceStore.open(a) as s:
        s.notes.create("pulled before the remount", body="body")
    sync.sync(a)
    with _mounted(tmp_path / "disk") as disk:
        b = test_sync.device(disk, "b")
        sync.login(b, server=server.url, user="ada", passphrase=test_sync.PASS)
        real = sync.sync

        def then_read_only(path: Any, **kw: Any) -> Any:
            report = real(path, **kw)
            sp.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            return report

        monkeypatch.setattr(sync, "sync", then_read_only)
        try:
            result = CliRunner().invoke(app, ["sync", "--json", "--db", str(b)])
        finally:
            sp.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        assert json.loads(result.stdout)["pulled"] >= 1
        assert result.exit_code == 0, result.stderr
        assert "duru: synced; housekeeping postponed" in result.stderr, result.stderr
        assert _found(b, "remount") == ["pulled before the remount"]
