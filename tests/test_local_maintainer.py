"""The Maintainer beside a writer: what stays off the writer's commits, and sharing its connection.

Real SQLite files; the maintainer is a real thread. Each test waits for the
maintainer to settle (a bounded wait), never for a fixed time.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.local import Database, DeviceStore
from duru.local.maintenance import (
    USER_MERGE,
    Maintainer,
    configure_writer,
    index_shape,
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


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "own-connection"])
def test_the_first_commit_after_a_pause_does_not_start_the_wal_over(
    db: Database, shared: bool
) -> None:
    # SQLite starts a fully checkpointed WAL over at the next commit, and syncs the new
    # header there. The maintainer makes that commit itself, so the writer's is an append.
    with Maintainer(db if shared else db.path, idle=0.05, merge_at=4) as maintainer:
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


def test_the_maintainer_never_waits_for_another_process_on_the_shared_connection(
    db: Database,
) -> None:
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        with Maintainer(db, tick=0.005, idle=0.02, merge_at=4) as maintainer:
            spread_writes(db, 12)
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                assert not maintainer.wait_settled(timeout=0.5)
                started = time.monotonic()
                with db.snapshot():  # takes Database.lock: must not queue behind a wait
                    db.scalar("SELECT count(*) FROM notes")
                assert time.monotonic() - started < 0.5
            finally:
                other.execute("ROLLBACK")
            assert maintainer.wait_settled(timeout=30) and maintainer.merge_steps > 0
        assert db.scalar("PRAGMA busy_timeout") == 5000  # the writer's own patience is back
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


def test_a_shared_connection_keeps_its_page_cache_through_merges(db: Database) -> None:
    # data_version moves only for commits by other connections: when it stays put, the
    # writer's next transaction keeps its cached pages. Merges and the WAL restart run on
    # the shared connection; the checkpoint (no change of content) on the maintainer's own.
    with Maintainer(db, idle=0.05, merge_at=4) as maintainer:
        spread_writes(db, 12)
        assert maintainer.wait_settled(timeout=30)
        seen = data_version(db)
        spread_writes(db, 12, start=12)
        assert maintainer.wait_settled(timeout=30)
        assert maintainer.merge_steps > 0 and maintainer.wal_restarts >= 2
        assert data_version(db) == seen
    assert index_shape(db.conn).level0 < USER_MERGE
    assert maintainer.error is None and verify_index(db) == 0


def test_an_own_connection_maintainer_makes_the_writer_reload(db: Database) -> None:
    # The control: the same work from the maintainer's own connection moves data_version.
    with Maintainer(db.path, idle=0.05, merge_at=4) as maintainer:
        spread_writes(db, 12)
        assert maintainer.wait_settled(timeout=30)
        seen = data_version(db)
        spread_writes(db, 12, start=12)
        assert maintainer.wait_settled(timeout=30)
        assert data_version(db) != seen
    assert maintainer.error is None


def test_the_maintainer_keeps_off_a_transaction_open_on_the_shared_connection(
    db: Database,
) -> None:
    with Maintainer(db, tick=0.005, idle=0.02, merge_at=4) as maintainer:
        spread_writes(db, 12)
        with db.transaction():
            db.insert("note", {"title": "held", "body": "while the maintainer waits"})
            # Quiet for the maintainer (no commit), with merging due: it must not step in.
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
