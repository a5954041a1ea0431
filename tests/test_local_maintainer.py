"""The Maintainer beside a writer: what stays off the writer's commits, on a connection of its own.

Real SQLite files; the maintainer is a real thread. Each test waits for the
maintainer to settle or stop (a bounded wait), never for a fixed time.
"""

from __future__ import annotations

import random
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.errors import CorruptDatabase, StoreError
from duru.local import Database, DeviceStore
from duru.local.maintenance import (
    Maintainer,
    configure_writer,
    tune_index,
    verify_index,
    wal_state,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "device.sqlite") as database:
        tune_index(database)
        configure_writer(database)
        yield database


def spread_writes(db: Database, count: int, start: int = 0) -> None:
    """``count`` notes, each its own transaction: one new index segment apiece."""
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    for i in range(start, start + count):
        db.insert("note", {"title": f"{words[i % 8]} {i}", "body": " ".join(words[: 1 + i % 8])})


def wal_generation(path: Path) -> tuple[int, bytes]:
    """The WAL header's checkpoint sequence and salts: both change when the WAL starts over."""
    head = Path(f"{path}-wal").read_bytes()[:24]
    return struct.unpack(">I", head[12:16])[0], head[16:24]


def data_version(db: Database) -> int:
    return int(db.conn.execute("PRAGMA data_version").fetchone()[0])


@pytest.mark.parametrize("given", ["database", "path"])
def test_the_first_commit_after_a_pause_does_not_start_the_wal_over(
    db: Database, given: str
) -> None:
    # SQLite starts a fully checkpointed WAL over at the next commit, and syncs the new
    # header there. The maintainer makes that commit itself, so the writer's is an append.
    with Maintainer(db if given == "database" else db.path, idle=0.05, merge_at=4) as maintainer:
        spread_writes(db, 12)
        assert maintainer.wait_settled(timeout=30)
        state = wal_state(db.path)  # only the maintainer's own write, left uncopied
        assert state is not None and 0 < state.frames == state.backlog <= 2
        assert maintainer.wal_restarts >= 1 and maintainer.merge_steps > 0
        before = wal_generation(db.path)
        spread_writes(db, 1, start=100)
        assert wal_generation(db.path) == before
        after = wal_state(db.path)
        assert after is not None and after.frames > state.frames  # appended
        assert db.meta("wal_restarted_at") is not None
    assert maintainer.error is None
    assert verify_index(db) == 0


def test_a_small_write_after_the_restart_is_still_checkpointed(db: Database) -> None:
    # A pin after the restart adds only a few frames to the maintainer's own: the next
    # pause copies them into the database file (the sync that makes them durable) and
    # starts the WAL over again.
    with Maintainer(db, idle=0.05) as maintainer:
        spread_writes(db, 3)
        assert maintainer.wait_settled(timeout=30)
        restarts, generation = maintainer.wal_restarts, wal_generation(db.path)
        note_id = db.scalar("SELECT id FROM notes LIMIT 1")
        db.update("note", note_id, {"is_pinned": True})
        small = wal_state(db.path)
        assert small is not None and small.backlog <= 8
        assert maintainer.wait_settled(timeout=30)
        assert maintainer.wal_restarts == restarts + 1
        assert wal_generation(db.path) != generation
    assert maintainer.error is None


def test_the_maintainer_never_waits_for_another_process(db: Database) -> None:
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        with Maintainer(db, tick=0.005, idle=0.02, merge_at=4) as maintainer:
            spread_writes(db, 12)
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                assert not maintainer.wait_settled(timeout=0.5)
                started = time.monotonic()
                with db.snapshot():  # the writer's own reads never queue behind the maintainer
                    db.scalar("SELECT count(*) FROM notes")
                assert time.monotonic() - started < 0.5
            finally:
                other.execute("ROLLBACK")
            assert maintainer.wait_settled(timeout=30) and maintainer.merge_steps > 0
        assert db.scalar("PRAGMA busy_timeout") == 5000  # the writer's patience, untouched
    finally:
        other.close()
    assert maintainer.error is None


def test_without_the_restart_the_writer_starts_the_wal_over_itself(db: Database) -> None:
    # The control for the test above: a complete checkpoint alone leaves the restart to
    # the next commit (so the test above would fail if the maintainer did not restart).
    spread_writes(db, 12)
    db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    before = wal_generation(db.path)
    spread_writes(db, 1, start=100)
    assert wal_generation(db.path) != before


def statements_by_thread(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Record (thread name, SQL) of every statement ``conn`` runs from now on."""
    seen: list[tuple[str, str]] = []
    conn.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql)))
    return seen


def test_the_maintainer_runs_nothing_on_the_writers_connection(tmp_path: Path) -> None:
    # Today's design: merges, the WAL restart and checkpoints all on its own connection,
    # so it can neither join nor roll back a transaction the application opened.
    with DeviceStore.open(tmp_path / "d.sqlite", background=True) as store:
        seen = statements_by_thread(store.db.conn)
        maintainer = store.maintainer
        assert maintainer is not None
        for batch in range(3):
            spread_writes(store.db, 12, start=12 * batch)
            assert maintainer.wait_settled(timeout=30)
        assert maintainer.merge_steps > 0 and maintainer.wal_restarts > 0
        store.db.conn.set_trace_callback(None)
    assert seen and {name for name, _ in seen} == {threading.current_thread().name}
    assert maintainer.error is None


def test_the_writer_reloads_its_page_cache_after_the_maintainers_work(db: Database) -> None:
    # The price of the maintainer's own connection: its commits (merges, the WAL restart)
    # move the writer's data_version, so the writer's next transaction rereads its pages.
    with Maintainer(db, idle=0.05, merge_at=4) as maintainer:
        spread_writes(db, 12)
        assert maintainer.wait_settled(timeout=30)
        seen = data_version(db)
        spread_writes(db, 12, start=12)
        assert maintainer.wait_settled(timeout=30)
        assert data_version(db) != seen
    assert maintainer.error is None


def test_a_transaction_open_on_the_writer_holds_the_maintainer_off(db: Database) -> None:
    with Maintainer(db, tick=0.005, idle=0.02, merge_at=4) as maintainer:
        spread_writes(db, 12)
        with db.transaction():
            db.insert("note", {"title": "held", "body": "while the maintainer waits"})
            # Quiet for the maintainer (no commit), with merging due: the writer holds the
            # write lock, so the maintainer's merge and restart find it busy and wait a tick.
            assert not maintainer.wait_settled(timeout=0.5)
            assert maintainer.merge_steps == 0 and maintainer.wal_restarts == 0
            assert db.conn.in_transaction
        assert maintainer.wait_settled(timeout=30)
        assert maintainer.merge_steps > 0
    assert db.scalar("SELECT count(*) FROM notes WHERE title = 'held'") == 1
    assert maintainer.error is None and verify_index(db) == 0


def test_threads_sharing_a_store_take_turns_at_transactions(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "d.sqlite", background=True) as store:
        failures: list[BaseException] = []

        def writer(name: str) -> None:
            try:
                for i in range(150):
                    with store.db.transaction():
                        note = store.notes.create(f"{name} {i}", "body")
                        store.tags.add(note["id"], name)
            except BaseException as exc:  # kept for the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in ("left", "right")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        assert store.notes.count() == 300
        assert store.db.scalar("SELECT count(*) FROM outbox WHERE entity = 'note'") == 300
        assert store.maintainer is not None and store.maintainer.wait_settled(timeout=30)
        assert store.maintainer.error is None
        assert verify_index(store.db) == 0


# -- the application's transactions, errors, stopping -----------------------------------

FTS_DATA = "notes_fts_data"
STRUCTURE_ROWID = 10  # FTS5's structure record; rowid 1 holds its averages


def damage_a_segment(db: Database) -> None:
    """Zero one segment leaf of the full-text index: merging it fails (SQLITE_CORRUPT_VTAB)."""
    leaves = db.conn.execute(
        f"SELECT id FROM {FTS_DATA} WHERE id NOT IN (1, ?) ORDER BY id", [STRUCTURE_ROWID]
    ).fetchall()
    db.conn.execute(
        f"UPDATE {FTS_DATA} SET block = zeroblob(length(block)) WHERE id = ?", [leaves[3][0]]
    )


def wait_stopped(maintainer: Maintainer, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while maintainer.running and time.monotonic() < deadline:
        time.sleep(0.01)
    return not maintainer.running


def test_a_raw_transaction_on_the_writer_survives_a_failed_merge(db: Database) -> None:
    # The application holds a raw BEGIN on the public connection while the maintainer's
    # merge fails on a damaged segment: the failure (and its rollback) stay on the
    # maintainer's connection, and the application's transaction goes on to commit.
    spread_writes(db, 12)
    damage_a_segment(db)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no WAL to restart: merging comes first
    db.conn.execute("BEGIN")
    live = db.conn.execute("SELECT count(*) FROM notes").fetchone()[0]
    maintainer = Maintainer(db, tick=0.005, idle=0.02, merge_at=4).start()
    try:
        assert wait_stopped(maintainer), "the merge over a damaged segment did not fail"
        assert db.conn.in_transaction
        assert db.conn.execute("SELECT count(*) FROM notes").fetchone()[0] == live
        db.conn.execute("INSERT INTO duru_meta (key, value) VALUES ('caller', 'kept')")
        db.conn.execute("COMMIT")
    finally:
        maintainer.stop()
    assert db.meta("caller") == "kept"
    assert isinstance(maintainer.error, sqlite3.DatabaseError)
    with pytest.raises(CorruptDatabase, match="background maintenance of .* stopped") as caught:
        maintainer.check()
    assert str(db.path) in caught.value.message and caught.value.__cause__ is maintainer.error


def test_raw_transactions_racing_the_maintainer_commit_or_roll_back_whole(db: Database) -> None:
    # Raw BEGINs on the public connection, each held a moment (the maintainer's idle
    # time, give or take), between notes that keep merges due: every committed row is
    # there, every rolled-back one is not, and no statement ran on it from the maintainer.
    seen = statements_by_thread(db.conn)
    rng = random.Random(14)
    with Maintainer(db, tick=0.002, idle=0.004, merge_at=2, step_gap=0.001) as maintainer:
        for i in range(60):
            spread_writes(db, 2, start=2 * i)
            db.conn.execute("BEGIN")
            db.conn.execute("INSERT INTO duru_meta (key, value) VALUES (?, 'x')", [f"raced-{i}"])
            time.sleep(rng.uniform(0, 0.008))
            db.conn.execute("COMMIT" if i % 2 == 0 else "ROLLBACK")
            time.sleep(rng.uniform(0, 0.008))
        assert maintainer.wait_settled(timeout=30)
    db.conn.set_trace_callback(None)
    kept = db.conn.execute("SELECT key FROM duru_meta WHERE key LIKE 'raced-%'").fetchall()
    assert {k for (k,) in kept} == {f"raced-{i}" for i in range(0, 60, 2)}
    assert {name for name, _ in seen} == {threading.current_thread().name}
    assert maintainer.merge_steps > 0 and maintainer.error is None
    assert verify_index(db) == 0


def test_the_error_that_stopped_the_maintainer_is_raised_when_the_store_closes(
    tmp_path: Path,
) -> None:
    store = DeviceStore.open(tmp_path / "d.sqlite", background=True)
    assert store.maintainer is not None
    spread_writes(store.db, 3)
    # A truncated structure record: the maintainer cannot read the index's shape.
    store.db.conn.execute(f"UPDATE {FTS_DATA} SET block = x'00' WHERE id = {STRUCTURE_ROWID}")
    assert wait_stopped(store.maintainer)
    with pytest.raises(CorruptDatabase, match="background maintenance of .* stopped") as caught:
        store.close()
    assert "structure record" in caught.value.message
    with pytest.raises(sqlite3.ProgrammingError):  # closed all the same
        store.db.conn.execute("SELECT 1")


def test_the_maintainers_error_does_not_hide_the_blocks_own(tmp_path: Path) -> None:
    with pytest.raises(LookupError) as caught:
        with DeviceStore.open(tmp_path / "d.sqlite", background=True) as store:
            assert store.maintainer is not None
            spread_writes(store.db, 1)
            store.db.conn.execute(f"DELETE FROM {FTS_DATA} WHERE id = {STRUCTURE_ROWID}")
            store.db.conn.execute(
                f"INSERT INTO {FTS_DATA} (id, block) VALUES ({STRUCTURE_ROWID}, x'00')"
            )
            assert wait_stopped(store.maintainer)
            raise LookupError("the block's own failure")
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1 and "background maintenance" in notes[0], notes


def test_a_maintainer_that_cannot_open_the_file_reports_it(tmp_path: Path) -> None:
    maintainer = Maintainer(tmp_path).start()  # a directory: no database opens there
    assert wait_stopped(maintainer)
    maintainer.stop()
    with pytest.raises(StoreError, match=f"background maintenance of {tmp_path} stopped: cannot"):
        maintainer.check()


def open_files(path: Path) -> list[str]:
    """This process's open file descriptors on ``path`` and its ``-wal`` and ``-shm``."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target in names:
            found.append(target)
    return found


def test_stop_returns_once_the_thread_has_closed_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    store = DeviceStore.open(path, background=True)
    maintainer = store.maintainer
    assert maintainer is not None
    spread_writes(store.db, 40)  # work in flight: stopped mid-way, not after settling
    store.close()
    assert not maintainer.running and maintainer.error is None
    assert open_files(path) == []


def test_stop_raises_when_the_thread_outlives_its_timeout_and_waits_when_called_again(
    tmp_path: Path,
) -> None:
    # Another process holds the file exclusively: the maintainer's connection waits in
    # opening it (its 5 s busy timeout), well past stop's timeout.
    path = tmp_path / "d.sqlite"
    Database.open(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    maintainer = Maintainer(path).start()
    try:
        with pytest.raises(StoreError, match="did not stop within 0.2 s") as caught:
            maintainer.stop(timeout=0.2)
        assert caught.value.retryable and maintainer.running
    finally:
        other.execute("COMMIT")
        other.close()
    maintainer.stop()
    assert not maintainer.running
    maintainer.check()


def open_temp_files() -> list[str]:
    """SQLite's temp files this process holds open (created, then unlinked at once)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if "etilqs_" in target.name:
            found.append(str(target))
    return found


@pytest.mark.parametrize("configured", [True, False], ids=["writer", "sqlite-default"])
def test_a_nested_write_keeps_its_statement_journal_in_memory(
    tmp_path: Path, configured: bool
) -> None:
    # Each update below is a savepoint inside the outer transaction; together they change
    # far more than the 64 KiB SQLite keeps in memory before it spills to a temp file.
    with Database.open(tmp_path / "d.sqlite") as db:
        if configured:
            configure_writer(db)
        ids = [
            db.insert("note", {"title": f"n{i}", "body": "word " * 200})["id"] for i in range(60)
        ]
        with db.transaction():
            for note_id in ids:
                db.update("note", note_id, {"body": "other " * 200})
            spilled = open_temp_files()
        assert (spilled == []) is configured, spilled
        assert db.scalar("SELECT count(*) FROM notes WHERE body LIKE 'other%'") == 60
