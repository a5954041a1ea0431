"""Fault injection on the device store and the `duru` command: kills, full disks, bad files.

The promise: bad input gets a clear duru error (from the CLI: one line on stderr and a
non-zero exit), and nothing is lost or silently changed. Real SQLite files, real processes:

- a writer (with its Maintainer merging and checkpointing) SIGKILLed at seeded random
  moments: every change it acknowledged survives, the one in flight is all or nothing,
  the full-text index and the outbox agree with the notes;
- a full disk (a small tmpfs when we may mount one, a file-size limit, a page limit):
  a clear StoreError, nothing acknowledged lost, writes work again once there is room;
- damaged, foreign, read-only and locked files: a clear error and the file's bytes unchanged.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from duru.errors import CorruptDatabase, DuruError, NotFound, SchemaMismatch, StoreError
from duru.local import DeviceStore
from duru.local.maintenance import Maintainer, verify_index
from duru.local.schema import fts_table
from duru.model import NOTE, NOTE_TAG

DURU = Path(sys.executable).with_name("duru")
FTS = fts_table(NOTE)
NOBODY = 65534  # the unprivileged user a root test run drops to for permission checks


# -- helpers ----------------------------------------------------------------------------


def duru(db: Path, *args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run the installed `duru ARGS --db DB` in a real process (after a ``prefix`` command)."""
    return subprocess.run(
        [*prefix, str(DURU), *args, "--db", str(db)], capture_output=True, text=True, timeout=60
    )


def one_line_failure(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one `duru: ...` line of a command that failed as it should, checked for ``words``."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("duru: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def snapshot(path: Path) -> dict[str, bytes]:
    """The bytes of a database file and its -wal beside it (what must not change).

    An empty -wal counts as none: SQLite makes one (and the -shm) whenever it reads a
    WAL database, and an empty one holds nothing to lose.
    """
    files = {}
    for name in (path.name, f"{path.name}-wal"):
        if (path.parent / name).is_file() and (data := (path.parent / name).read_bytes()):
            files[name] = data
    return files


def make_store(path: Path, notes: int = 60, words: int = 200, prefix: str = "") -> list[str]:
    """A device database with ``notes`` notes, fully checkpointed (no -wal left); their ids."""
    with DeviceStore.open(path) as store:
        ids = [
            store.notes.create(f"{prefix}note {i}", f"{prefix}words " * words, tags=["t"])["id"]
            for i in range(notes)
        ]
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def assert_intact(path: Path, note_ids: list[str]) -> None:
    """The database passes integrity_check and holds every note in ``note_ids``."""
    with DeviceStore.open(path, create=False) as store:
        assert store.db.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
        store.db.conn.execute(f"INSERT INTO {FTS} ({FTS}) VALUES ('integrity-check')")
        found = {r["id"] for r in store.db.rows("SELECT id FROM notes")}
        assert set(note_ids) <= found, f"{len(set(note_ids) - found)} acknowledged notes lost"


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(where: Path, size_kib: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kib`` KiB mounted at ``where`` (skips when mounting fails)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0777", "duru-test", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


# -- 1. a killed writer -----------------------------------------------------------------

# The writer: random creates, edits, trashes, restores, tags, untags and purges through
# DeviceStore, with a Maintainer merging and checkpointing beside it. Before each change it
# logs its intent; after the call returns it logs an ack and fsyncs the log.
WRITER = r"""
import json, os, random, sys, time
from duru.local import DeviceStore
from duru.local.maintenance import Maintainer, configure_writer

path, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
WORDS = ["alpha", "beta", "gamma", "delta", "ünïcode", "café", "mirror", "lantern", "river"]
TAGS = ["home", "work", "idea", "später", "x-1"]
store = DeviceStore.open(path)
configure_writer(store.db, hard_cap_pages=300)
maintainer = Maintainer(path, tick=0.002, idle=0.008, busy_checkpoint_pages=60).start()
ids, trashed, tags = {}, set(), {}
for note_id, title, deleted in store.db.conn.execute("SELECT id, title, deleted FROM notes"):
    ids[title], tags[title] = note_id, set()
    if deleted:
        trashed.add(title)
titles = {v: k for k, v in ids.items()}
for note_id, tag in store.db.conn.execute("SELECT note_id, tag FROM note_tags"):
    tags[titles[note_id]].add(tag)
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def body(title, n):
    return f"{title} v{n} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 80)))

def choose(n):
    live = sorted(set(ids) - trashed)
    kinds = ["create"] * 3
    if live:
        kinds += ["edit"] * 3 + ["trash", "tag", "tag"]
    if trashed:
        kinds += ["restore", "purge"]
    if any(tags.values()):
        kinds.append("untag")
    kind = rng.choice(kinds)
    if kind == "create":
        title = f"m{seed}x{n}"
        return {"op": kind, "title": title, "body": body(title, n),
                "tags": rng.sample(TAGS, rng.randint(0, 2))}
    if kind == "untag":
        title = rng.choice(sorted(t for t in ids if tags[t]))
        return {"op": kind, "title": title, "tag": rng.choice(sorted(tags[title]))}
    title = rng.choice(sorted(trashed) if kind in ("restore", "purge") else live)
    if kind == "tag":
        free = sorted(set(TAGS) - tags[title])
        return {"op": kind, "title": title, "tag": rng.choice(free)} if free else choose(n)
    return {"op": kind, "title": title, "body": body(title, n)}

def apply(op):
    kind, title = op["op"], op["title"]
    if kind == "create":
        ids[title] = store.notes.create(title, op["body"], tags=op["tags"])["id"]
        tags[title] = set(op["tags"])
    elif kind == "edit":
        store.notes.edit(ids[title], body=op["body"])
    elif kind == "trash":
        store.notes.trash(ids[title]); trashed.add(title)
    elif kind == "restore":
        store.notes.restore(ids[title]); trashed.discard(title)
    elif kind == "tag":
        store.tags.add(ids[title], op["tag"]); tags[title].add(op["tag"])
    elif kind == "untag":
        assert store.tags.remove(ids[title], op["tag"]); tags[title].discard(op["tag"])
    elif kind == "purge":
        store.notes.purge(ids.pop(title)); trashed.discard(title); del tags[title]

print("ready", flush=True)
n = 0
while True:
    n += 1
    op = choose(n)
    os.write(log, (json.dumps(op) + "\n").encode())
    apply(op)
    os.write(log, b'{"ack": true}\n')
    os.fsync(log)
    if maintainer.error is not None:
        raise maintainer.error
    if n % 5 == 0:
        print(json.dumps({"checkpoints": maintainer.checkpoints,
                          "merge_steps": maintainer.merge_steps}), flush=True)
    if rng.random() < 0.1:  # a pause: the maintainer merges and checkpoints in it
        time.sleep(rng.uniform(0.005, 0.04))
"""

NoteState = tuple[str, bool, frozenset[str]]  # body, deleted, tags


def applied(notes: dict[str, NoteState], op: dict[str, Any]) -> tuple[dict[str, NoteState], int]:
    """The notes after ``op`` (keyed by title), and how many outbox rows ``op`` writes."""
    notes, title, kind = dict(notes), op["title"], op["op"]
    if kind == "create":
        notes[title] = (op["body"], False, frozenset(op["tags"]))
        return notes, 1 + len(op["tags"])  # the note and each tag row
    body, deleted, tags = notes[title]
    if kind == "purge":
        del notes[title]
        return notes, 1 + len(tags)  # a tombstone for the note and for each tag row
    notes[title] = {
        "edit": (op.get("body", ""), deleted, tags),
        "trash": (body, True, tags),
        "restore": (body, False, tags),
        "tag": (body, deleted, tags | {op.get("tag", "")}),
        "untag": (body, deleted, tags - {op.get("tag", "")}),
    }[kind]
    return notes, 1


def replay(log: Path) -> tuple[dict[str, NoteState], int, dict[str, Any] | None]:
    """Acknowledged notes and outbox rows from the writer's log, and the op in flight."""
    notes: dict[str, NoteState] = {}
    ops, pending = 0, None
    text = log.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a log line was torn"
    for line in text.splitlines():
        entry = json.loads(line)
        if "op" in entry:
            assert pending is None, "two ops in flight"
            pending = entry
        elif entry.get("ack"):
            assert pending is not None
            notes, written = applied(notes, pending)
            ops, pending = ops + written, None
        elif entry.get("void"):
            pending = None
    return notes, ops, pending


def stored_notes(store: DeviceStore) -> tuple[dict[str, NoteState], dict[str, str]]:
    """The notes in the database keyed by title, and each title's id."""
    tags: dict[str, set[str]] = {}
    for row in store.db.rows("SELECT note_id, tag FROM note_tags"):
        tags.setdefault(row["note_id"], set()).add(row["tag"])
    notes, ids = {}, {}
    for row in store.db.rows("SELECT id, title, body, deleted FROM notes"):
        notes[row["title"]] = (
            row["body"],
            bool(row["deleted"]),
            frozenset(tags.get(row["id"], ())),
        )
        ids[row["title"]] = row["id"]
    return notes, ids


def check_outbox(store: DeviceStore, expected_rows: int) -> None:
    """One outbox row per committed change, and each row's latest op says whether it exists."""
    db = store.db
    assert db.scalar("SELECT count(*) FROM outbox") == expected_rows
    assert {r["entity"] for r in db.rows("SELECT DISTINCT entity FROM outbox")} <= {
        NOTE.name,
        NOTE_TAG.name,
    }
    for e in (NOTE, NOTE_TAG):
        unsynced = db.scalar(
            f"SELECT count(*) FROM {e.table} x WHERE NOT EXISTS"
            " (SELECT 1 FROM outbox o WHERE o.entity = ? AND o.row_id = x.id)",
            [e.name],
        )
        assert unsynced == 0, f"{unsynced} {e.table} rows have no outbox op"
        latest = db.rows(
            "SELECT o.row_id, o.kind, EXISTS (SELECT 1 FROM"
            f" {e.table} x WHERE x.id = o.row_id) AS present FROM outbox o WHERE o.entity = ?"
            " AND o.seq = (SELECT max(p.seq) FROM outbox p"
            " WHERE p.entity = o.entity AND p.row_id = o.row_id)",
            [e.name],
        )
        wrong = [r for r in latest if (r["kind"] == "upsert") != bool(r["present"])]
        assert not wrong, f"outbox ops that disagree with the {e.table} rows: {wrong[:3]}"


def check_after_kill(path: Path, log: Path) -> bool | None:
    """Everything a killed writer left must hold; whether its op in flight committed."""
    acked, rows, pending = replay(log)
    with DeviceStore.open(path, create=False) as store:
        assert store.db.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
        store.db.conn.execute(f"INSERT INTO {FTS} ({FTS}) VALUES ('integrity-check')")
        assert verify_index(store.db) == 0
        found, ids = stored_notes(store)
        committed: bool | None = None
        if found != acked:
            assert pending is not None, "the database differs from the acknowledged changes"
            after, written = applied(acked, pending)
            lost = {t: s for t, s in acked.items() if found.get(t) != s}
            assert found == after, f"neither before nor after {pending['op']}; lost: {lost}"
            acked, rows, committed = after, rows + written, True
        elif pending is not None:
            committed = False
        check_outbox(store, rows)
        for title, (_, deleted, _) in acked.items():
            hits = [h.id for h in store.search.query(title, limit=3)]
            assert hits == ([] if deleted else [ids[title]]), (title, hits)
    if pending is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write('{"ack": true}\n' if committed else '{"void": true}\n')
    return committed


def wait_for_op_in_flight(log: Path, timeout: float = 10.0) -> None:
    """Return as soon as the writer's log ends with an intent that has no ack yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if b'"op"' in last:
            return
        time.sleep(0.0001)
    raise AssertionError("the writer started no change in time")


@pytest.mark.slow
def test_a_killed_writer_loses_no_acknowledged_change(tmp_path: Path) -> None:
    """SIGKILL a writer 16 times: no acknowledged change lost, the one in flight whole or absent.

    The moments are seeded random ones, every other one inside a change. WAL with
    synchronous=NORMAL keeps every commit through a kill: NORMAL may lose the last
    commits on power loss, never on a process kill, as the WAL's frames are in the OS
    page cache as soon as COMMIT returns.

    A change takes about a millisecond, so on a busy machine the kill aimed at one can
    land after its ack every time: the writer is killed again (up to 48 times in all)
    until a kill has landed inside a change.
    """
    db, log = tmp_path / "device.sqlite", tmp_path / "acks.log"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    rng = random.Random(20240611)
    in_flight = {True: 0, False: 0}
    busiest = {"checkpoints": 0, "merge_steps": 0}
    for round_no in range(48):
        if round_no >= 16 and sum(in_flight.values()) > 0:
            break
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), str(log), str(round_no)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        ready = proc.stdout.readline()
        assert ready == "ready\n", proc.stderr.read()
        time.sleep(rng.uniform(0.02, 0.45))
        if round_no % 2:  # every other kill waits for a change in flight, then lands in it
            wait_for_op_in_flight(log)
            time.sleep(rng.uniform(0.0, 0.002))
        assert proc.poll() is None, f"the writer died on its own: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for line in proc.stdout.read().splitlines():
            stats = json.loads(line)
            busiest = {k: max(busiest[k], stats[k]) for k in busiest}
        proc.stdout.close()
        proc.stderr.close()
        committed = check_after_kill(db, log)
        if committed is not None:
            in_flight[committed] += 1
    acks = log.read_text(encoding="utf-8").count('"ack"')
    assert acks > 50, f"only {acks} acknowledged changes: too few to prove anything"
    assert sum(in_flight.values()) > 0, "no kill landed with a change in flight"
    assert busiest["checkpoints"] > 0 and busiest["merge_steps"] > 0, busiest
    with DeviceStore.open(db, create=False) as store:
        store.notes.create("after the kills", "still writable")


# -- 2. a full disk ---------------------------------------------------------------------


def fill(folder: Path, leave_kib: int) -> Path:
    """A ballast file that fills ``folder``'s file system but ``leave_kib`` KiB."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)
    os.truncate(ballast, max(0, ballast.stat().st_size - leave_kib * 1024))
    return ballast


def write_until_refused(store: DeviceStore, limit: int = 10_000) -> tuple[list[str], StoreError]:
    """Create notes until the store refuses one; the ids acknowledged, and the refusal."""
    acked: list[str] = []
    for i in range(limit):
        try:
            acked.append(store.notes.create(f"filler {i}", "lorem ipsum " * 300, tags=["x"])["id"])
        except StoreError as exc:
            return acked, exc
    raise AssertionError(f"{limit} notes and still no refusal")


# Bigger than the 4 MiB file system: refused whatever room an earlier refusal left. A
# refused write leaves the frames it managed to write at the WAL's end, and the next write
# reuses them, so a smaller note than the refused one may well fit.
LARGER_THAN_THE_DISK = "x" * (5 * 1024 * 1024)


@pytest.mark.skipif(not can_mount(), reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    """Fill a 4 MiB tmpfs with notes; a Maintainer beside the writes waits the full disk out.

    Deterministic on a busy machine: the maintainer acts when writes pause (idle 20 ms),
    which a descheduled test process gives it at any moment. So it first settles (its
    merges and WAL restart done before the disk fills), and a reader holds the WAL while
    the disk fills: no checkpoint or WAL restart can make room mid-fill, and the
    checkpoint it owes afterwards cannot fit (see :func:`fill_up_then_free`).
    """
    with tmpfs(tmp_path / "disk", 4096) as disk:
        path = disk / "device.sqlite"
        before = make_store(path, notes=20)
        with Maintainer(path, tick=0.005, idle=0.02) as maintainer:
            assert maintainer.wait_settled(10) and maintainer.error is None, maintainer.error
            acked = fill_up_then_free(path, maintainer)
            # Room again: the maintainer carries on where it stopped, and settles.
            assert maintainer.wait_settled(10) and maintainer.error is None, maintainer.error
        assert_intact(path, before + acked)


@contextmanager
def wal_held(path: Path) -> Iterator[None]:
    """A read transaction open on ``path``: no checkpoint copies, no WAL restarts past it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM notes").fetchone()
        yield
    finally:
        conn.close()


def fill_up_then_free(path: Path, maintainer: Maintainer) -> list[str]:
    """Write notes until the disk is full, check the refusals, then free the space."""
    with DeviceStore.open(path, create=False) as store:
        notes_before = store.notes.count()
        with wal_held(path):
            ballast = fill(path.parent, leave_kib=400)
            acked, refused = write_until_refused(store)
            assert acked, "the 400 KiB left should hold a few notes"
            assert type(refused) is StoreError and not refused.retryable
            assert "disk is full" in refused.message and "nothing was written" in refused.message
            assert str(path) in refused.message
            # The store is still usable: it reads, and refuses the next write the same way.
            assert store.notes.count() == notes_before + len(acked)
            with pytest.raises(StoreError, match="disk is full"):
                store.notes.create("one more", LARGER_THAN_THE_DISK)
            cli = subprocess.run(
                [str(DURU), "note", "add", "from the cli", "--body", "-", "--db", str(path)],
                input=LARGER_THAN_THE_DISK,
                capture_output=True,
                text=True,
                timeout=60,
            )
            one_line_failure(cli, "disk is full")
        # Quiet now: the maintainer owes a checkpoint of every note above (the reader held
        # it back), whose pages lie past the file's end: it tries, against the full disk.
        deadline = time.monotonic() + 10
        while maintainer.full_disk_ticks == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert maintainer.full_disk_ticks > 0 and maintainer.running, maintainer.error
    assert_intact(path, acked)
    ballast.unlink()
    with DeviceStore.open(path, create=False) as store:
        acked.append(store.notes.create("room again")["id"])
    assert duru(path, "note", "add", "room again").returncode == 0
    return acked


# A writer under a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG),
# which any user may set: the database's files cannot grow past it, as on a full disk.
LIMITED = r"""
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from duru.errors import DuruError
from duru.local import DeviceStore
store = DeviceStore.open(sys.argv[1], create=False)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
acked = []
try:
    for i in range(100_000):
        acked.append(store.notes.create(f"filler {i}", "lorem ipsum " * 300)["id"])
except DuruError as exc:
    refused = {"class": type(exc).__name__, "message": exc.message, "retryable": exc.retryable}
    try:
        store.notes.create("and again", "lorem ipsum " * 300)
        again = None
    except DuruError as exc2:
        again = type(exc2).__name__
    print(json.dumps({"acked": acked, "refused": refused, "again": again}))
"""


def test_a_file_size_limit_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "device.sqlite"
    before = make_store(path, notes=20, words=20)
    script = tmp_path / "limited.py"
    script.write_text(LIMITED, encoding="utf-8")
    limit = path.stat().st_size + 512 * 1024
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert result["acked"], "512 KiB should hold a few notes"
    assert result["refused"]["class"] == "StoreError", result["refused"]
    assert "nothing was written" in result["refused"]["message"], result["refused"]
    assert result["again"] == "StoreError"
    assert_intact(path, before + result["acked"])
    # The CLI with a note too big for its limit (64 KiB; bash counts ulimit -f in KiB).
    limited_cli = f"trap '' XFSZ; ulimit -f 64; exec {DURU} note add big --body - --db {path}"
    big = "lorem ipsum " * 20_000
    grown = subprocess.run(["bash", "-c", limited_cli], input=big, capture_output=True, text=True)
    one_line_failure(grown, str(path), "could not be read or written", "nothing was written")
    # Past the limit already: opening fails, as clearly (the -shm cannot even be made).
    opening = f"trap '' XFSZ; ulimit -f 1; exec {DURU} note list --db {path}"
    tiny = subprocess.run(["bash", "-c", opening], capture_output=True, text=True)
    one_line_failure(tiny, str(path), "could not be read or written")
    assert_intact(path, before + result["acked"])
    assert duru(path, "note", "add", "no limit").returncode == 0


def test_a_page_limit_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    """SQLITE_FULL without a small disk: a connection that may not grow the file further."""
    path = tmp_path / "device.sqlite"
    before = make_store(path, notes=5, words=5)
    with DeviceStore.open(path, create=False) as store:
        pages = store.db.scalar("PRAGMA page_count")
        store.db.conn.execute(f"PRAGMA max_page_count = {pages + 40}")
        acked, refused = write_until_refused(store)
        assert type(refused) is StoreError and "full" in refused.message
        assert not store.db.conn.in_transaction
        store.db.conn.execute(f"PRAGMA max_page_count = {pages + 4000}")
        acked.append(store.notes.create("room again")["id"])
    assert_intact(path, before + acked)


# -- 3. damaged, foreign and unusable files ---------------------------------------------


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(64 * 1024))


def truncated(path: Path) -> None:
    make_store(path)
    os.truncate(path, path.stat().st_size // 2)


def damaged_pages(path: Path) -> None:
    """A valid header and schema, and garbage over the pages near the end (note bodies)."""
    make_store(path, notes=200, words=300)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(size - 40 * 4096)
        fh.write(random.Random(2).randbytes(40 * 4096))


def damaged_schema_page(path: Path) -> None:
    """The 100-byte header intact, the rest of page 1 (the schema's root) overwritten."""
    make_store(path, notes=5)
    with path.open("r+b") as fh:
        fh.seek(100)
        fh.write(random.Random(3).randbytes(4096 - 100))


def zero_length(path: Path) -> None:
    path.write_bytes(b"")


def directory(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("a folder, not a database")


def foreign_wal(path: Path) -> None:
    """The -wal of another device database beside this one (a restored backup, a copy).

    SQLite would replay any valid WAL it finds into the file: the other database's
    pages would silently replace this one's notes.
    """
    other = path.with_name("other.sqlite")
    with DeviceStore.open(other) as store:
        store.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
        for i in range(30):
            store.notes.create(f"other {i}", "another device")
        shutil.copyfile(f"{other}-wal", path.with_name("other.wal"))
    make_store(path, notes=30)
    shutil.copyfile(path.with_name("other.wal"), f"{path}-wal")


# case -> (make the file, the error class, words the message holds)
DAMAGE = {
    "garbage": (garbage, CorruptDatabase, "not an SQLite database"),
    "truncated": (truncated, CorruptDatabase, "damaged"),
    "damaged pages": (damaged_pages, CorruptDatabase, "damaged"),
    "damaged schema page": (damaged_schema_page, CorruptDatabase, "damaged"),
    "zero length": (zero_length, NotFound, "no device database"),
    "directory": (directory, StoreError, "Is a directory"),
    "foreign wal": (foreign_wal, CorruptDatabase, "belongs to another database"),
}


def use(path: Path) -> None:
    """What a first session does: open, list, search, write."""
    with DeviceStore.open(path, create=False) as store:
        store.notes.list_recent(500)
        store.search.query("words", limit=500)
        store.notes.create("a new note")


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_file_is_a_clear_error_and_stays_as_it_was(tmp_path: Path, case: str) -> None:
    make, error, words = DAMAGE[case]
    path = tmp_path / "device.sqlite"
    make(path)
    before = snapshot(path)
    with pytest.raises(DuruError) as raised:
        use(path)
    assert type(raised.value) is error, repr(raised.value)
    assert words in raised.value.message and str(path) in raised.value.message
    assert not raised.value.retryable
    line = one_line_failure(duru(path, "note", "list", "--limit", "500"), words)
    assert str(path) in line
    if case != "zero length":  # `note add` makes a database in an empty file: that is init
        one_line_failure(duru(path, "note", "add", "x"), words)
    assert snapshot(path) == before, "a failed open changed the user's file"


def test_damage_found_by_any_read_is_a_clear_error(tmp_path: Path) -> None:
    """Garbage over the tag table's pages only: notes still read, every tag read says why."""
    path = tmp_path / "device.sqlite"
    note_id = make_store(path, notes=300, words=2)[0]
    with DeviceStore.open(path, create=False) as store:
        roots = [
            r["rootpage"]
            for r in store.db.rows(
                "SELECT rootpage FROM sqlite_schema WHERE tbl_name = ? AND rootpage > 0",
                [NOTE_TAG.table],
            )
        ]
        page_size = store.db.scalar("PRAGMA page_size")
    with path.open("r+b") as fh:
        for root in roots:
            fh.seek((root - 1) * page_size)
            fh.write(random.Random(root).randbytes(page_size))
    with DeviceStore.open(path, create=False) as store:
        assert len(store.notes.list_recent(500)) == 300
        for read in (
            lambda: store.tags.list_for(note_id),
            store.tags.counts,
            lambda: store.tags.notes_with("t"),
            lambda: store.search.query("words", tag="t"),
        ):
            with pytest.raises(CorruptDatabase, match="damaged|not a readable"):
                read()
    one_line_failure(duru(path, "tag", "list"), str(path))


def test_a_foreign_wal_that_matches_is_replayed(tmp_path: Path) -> None:
    """The same check must let the database's own WAL (left by a crash) be recovered."""
    path = tmp_path / "device.sqlite"
    ids = make_store(path, notes=3)
    with DeviceStore.open(path, create=False) as store:
        store.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
        ids.append(store.notes.create("only in the wal")["id"])
        shutil.copyfile(f"{path}-wal", tmp_path / "own.wal")
    shutil.copyfile(tmp_path / "own.wal", f"{path}-wal")  # as a crash would leave it
    assert_intact(path, ids)


# -- read-only and locked files ---------------------------------------------------------

# Run as an unprivileged user (root ignores file modes): the API's outcome as JSON.
READ_ONLY = r"""
import json, sys
from duru.errors import DuruError
from duru.local import DeviceStore
out = {}
try:
    with DeviceStore.open(sys.argv[1], create=False) as store:
        out["listed"] = len(store.notes.list_recent(100))
        store.notes.create("refused")
except DuruError as exc:
    out["error"] = [type(exc).__name__, exc.message]
print(json.dumps(out))
"""


def unprivileged() -> list[str]:
    """A command prefix that drops root (file modes bind everyone else anyway)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("as root, file modes are checked as another user: that needs setpriv")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def test_a_read_only_file_refuses_writes_clearly(tmp_path: Path) -> None:
    # As root the files live where the unprivileged user can reach them.
    folder = Path(tempfile.mkdtemp(prefix="duru-ro-")) if os.geteuid() == 0 else tmp_path
    try:
        folder.chmod(0o777)
        path = folder / "device.sqlite"
        ids = make_store(path, notes=7, words=5)
        path.chmod(0o444)
        before = snapshot(path)
        script = folder / "read_only.py"
        script.write_text(READ_ONLY, encoding="utf-8")
        drop = unprivileged()
        done = subprocess.run(
            [*drop, sys.executable, str(script), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["listed"] == 7  # reading a read-only database works
        kind, message = result["error"]
        assert kind == "StoreError" and "read-only" in message and str(path) in message
        listed = duru(path, "note", "list", "--json", prefix=drop)
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 7, listed.stderr
        one_line_failure(duru(path, "note", "add", "x", prefix=drop), "read-only")
        assert snapshot(path) == before
        path.chmod(0o644)
        assert_intact(path, ids)
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder)


@pytest.mark.skipif(not can_mount(), reason="a read-only mount needs root")
def test_a_database_on_a_read_only_file_system_is_a_clear_error(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 2048) as disk:
        path = disk / "device.sqlite"
        ids = make_store(path, notes=5, words=5)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        before = snapshot(path)
        with pytest.raises(StoreError) as raised:
            use(path)
        assert "read-only" in raised.value.message and str(path) in raised.value.message
        one_line_failure(duru(path, "note", "list"), "read-only")
        one_line_failure(duru(path, "note", "add", "x"), "read-only")
        assert snapshot(path) == before
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert_intact(path, ids)


LOCKER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO duru_meta (key, value) VALUES ('held', 'by the locker')")
print("locked", flush=True)
time.sleep(120)
"""


@contextmanager
def locked(path: Path, mode: str) -> Iterator[None]:
    """Another process holding a write transaction on ``path`` (never committed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield
    finally:
        proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["writer", "exclusive"])
def test_a_locked_database_is_a_retryable_error(tmp_path: Path, mode: str) -> None:
    """A writer blocks writes (WAL readers go on); an exclusive lock blocks everything.

    Each refusal waits out the 5 s busy timeout, so the CLI runs beside the API call.
    """
    path = tmp_path / "device.sqlite"
    ids = make_store(path, notes=4, words=5)
    with locked(path, mode):
        cli_args = ("note", "add", "x") if mode == "writer" else ("note", "list")
        cli = subprocess.Popen(
            [str(DURU), *cli_args, "--db", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(StoreError) as raised:
            if mode == "writer":
                with DeviceStore.open(path, create=False) as store:
                    assert len(store.notes.list_recent()) == 4  # readers are not blocked
                    store.notes.create("blocked")
            else:
                DeviceStore.open(path, create=False)
        out, err = cli.communicate(timeout=60)
    assert type(raised.value) is StoreError and raised.value.retryable
    assert "database is locked" in raised.value.message and "try again" in raised.value.message
    done = subprocess.CompletedProcess(cli.args, cli.returncode, out, err)
    one_line_failure(done, "database is locked", "try again")
    assert_intact(path, ids)
    with DeviceStore.open(path, create=False) as store:
        assert store.db.meta("held") is None  # the locker's write died with it
        store.notes.create("after the lock")


# -- 4. the wrong kind of file ----------------------------------------------------------


def legacy_v11(path: Path) -> None:
    """A small app database of schema version 11 (before Migration 12)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE local_notes (id TEXT PRIMARY KEY, title TEXT, body TEXT,
                updated_at INTEGER, deleted INTEGER, encrypted_metadata TEXT,
                is_pinned INTEGER, note_type INTEGER);
            CREATE TABLE note_tags (note_id TEXT, tag TEXT);
            CREATE TABLE pending_ops (id INTEGER PRIMARY KEY, entity_id TEXT, kind TEXT,
                payload TEXT, created_at TEXT);
            CREATE VIRTUAL TABLE fts_notes USING fts5(id UNINDEXED, title, body, folder_path);
            INSERT INTO local_notes VALUES ('n1', 'Groceries', 'milk', 1700000000, 0, NULL, 1, 0);
            INSERT INTO note_tags VALUES ('n1', 'home');
            PRAGMA user_version = 11;
            """
        )
    conn.close()


def test_a_legacy_app_database_points_at_duru_import(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    legacy_v11(path)
    before = snapshot(path)
    with pytest.raises(SchemaMismatch, match="duru import"):
        DeviceStore.open(path, create=False)
    with pytest.raises(SchemaMismatch, match="duru import"):
        DeviceStore.open(path)
    one_line_failure(duru(path, "note", "list"), "not a duru device database", "duru import")
    one_line_failure(duru(path, "note", "add", "x"), "duru import")
    assert snapshot(path) == before, "refusing the app's file changed it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]
