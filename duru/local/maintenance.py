"""Keep WAL checkpoints and FTS5 merges off the write path, and the index right.

Left to its defaults, SQLite does two kinds of housekeeping inside the COMMIT
of whichever write happens to cross a threshold: a WAL checkpoint once the
WAL holds 1000 pages (copy them into the database file and sync it), and FTS5
segment merges (``automerge``: a slice of merge work on each write once a
level has 4 segments; ``crisismerge``: all segments of a level at once when it
reaches 16). Most creates take a fraction of a millisecond; the unlucky one
pays for everything, and that is the create-note tail.

duru moves that work to a :class:`Maintainer`, a thread that does it when
writes pause:

- FTS5 ``automerge`` is 0 and ``crisismerge`` is :data:`CRISIS_MERGE`
  (:func:`tune_index`; persisted in the index's ``%_config`` table, so every
  connection to the file behaves the same). Once writes have been quiet for
  a moment and level 0 holds :data:`QUIET_MERGE_SEGMENTS` segments, the
  maintainer merges in steps of :data:`MERGE_PAGES` pages, stopping as soon
  as a write shows up;
- the writer runs with ``wal_autocheckpoint`` at :data:`HARD_CAP_PAGES`
  (:func:`configure_writer`), so it checkpoints only when the WAL has grown
  that far: the WAL cannot grow without bound even with no maintainer, and
  ``journal_size_limit`` trims the file after it resets. The maintainer runs
  ``wal_checkpoint(PASSIVE)`` (which never blocks a writer) when writes are
  quiet, and while they go on only once the WAL holds
  :data:`BUSY_CHECKPOINT_PAGES` new frames: a checkpoint's file syncs slow
  the writes beside it, so it waits for a pause when it can;
- once a checkpoint in a pause has copied the whole WAL, the maintainer makes
  the next commit itself (:meth:`Maintainer._restart_wal`). SQLite starts a
  fully copied WAL over at the next commit and syncs the new WAL header to
  disk there, so without it the first write after every pause paid a sync.

The maintainer works only on a connection of its own, never on the
application's: a transaction the application opens there (through
``Database.transaction`` or a raw ``BEGIN`` on the public ``db.conn``) is
never joined, checked or rolled back by another thread. It never waits for a
lock (``busy_timeout`` 0): a write lock held elsewhere means a later tick. The
price (measured: 0.1 to 0.3 ms): a commit by another connection makes the
writer drop its page cache at its next transaction, so the first write after
each merge or WAL restart reads its pages again; hence merging only every few
segments. An error that stops the thread is kept and reported by
:meth:`Maintainer.check` (``DeviceStore.close`` calls it), and
:meth:`Maintainer.stop` returns only once the thread has ended and closed its
connection.

The trade-offs. While writes go on without a pause, level 0 collects one
small segment per transaction: a query probes more b-trees until the next
pause (measured at 100k notes: a typical two-word search goes from 7 to 19 ms
of CPU with 128 such segments), and after :data:`CRISIS_MERGE` such writes
one of them still pays for merging them all (a rare spike instead of a
frequent one); likewise the WAL grows to :data:`BUSY_CHECKPOINT_PAGES` frames
before a checkpoint runs beside the writes. A merge step holds the write
lock: a millisecond or so when level 0 is small, tens of milliseconds when a
long run of writes left hundreds of segments (each step re-reads every input
segment), so a write that arrives during one waits for it. A process that
writes without a maintainer should call :func:`maintain` now and then (a CLI
command after its writes, say). Results never depend on merge state: FTS5
reads every segment, merged or not, and :func:`verify_index` proves the index
equals the live notes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from duru.errors import CorruptDatabase, StoreError
from duru.local.db import Database, connect, write_meta
from duru.local.failures import store_failure
from duru.local.schema import DOC_ID, FTS_TOKENIZER, fts_table, quote, where_sql
from duru.model import NOTE, now_ms

BUSY_CHECKPOINT_PAGES = 8000  # 32 MiB of 4 KiB pages: checkpoint beside writes past this
HARD_CAP_PAGES = 16_384  # 64 MiB of 4 KiB pages: the writer checkpoints itself past this
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
MERGE_PAGES = 16  # leaf pages per merge step: a step holds the write lock a few ms
USER_MERGE = 4  # FTS5's default: merge a level once it has this many segments
CRISIS_MERGE = 256  # rare enough to stay out of the p99; FTS5 refuses writes at 2000
# In a pause, merge only once level 0 holds this many segments: each merge makes the
# writer's connection reload its page cache on its next write, so not after every note.
QUIET_MERGE_SEGMENTS = 8

_FTS = quote(fts_table(NOTE))
_STRUCTURE_ROWID = 10  # FTS5 keeps its structure record at this rowid of %_data
_STRUCTURE_V2 = b"\xff\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class IndexShape:
    """The full-text index's b-tree segments: in all, on level 0, and whether a merge is open."""

    segments: int
    level0: int
    merging: bool = False


@dataclass(frozen=True, slots=True)
class WalState:
    """Frames in the WAL and how many of them are already in the database file."""

    frames: int
    backfilled: int

    @property
    def backlog(self) -> int:
        return max(0, self.frames - self.backfilled)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one :func:`maintain` call did and left."""

    merge_steps: int
    merge_done: bool
    checkpointed: int
    wal_frames: int
    shape: IndexShape


def configure_writer(db: Database, *, hard_cap_pages: int = HARD_CAP_PAGES) -> None:
    """Settings for a connection that writes: no routine checkpoint, no temp file, in COMMIT.

    The connection still checkpoints itself once the WAL reaches
    ``hard_cap_pages`` frames, whatever any maintainer does.

    ``temp_store = MEMORY``: a nested transaction is a savepoint, and SQLite
    keeps the original of every page changed under a savepoint in a statement
    journal, which past 64 KiB it spills to a new temp file (created, unlinked,
    written, closed). Creating a note went past that every time: its full-text
    index flush runs under the savepoint. Measured at 100k notes: 0.1 ms of a
    0.5 ms create, more after a pause. Kept in memory, the journal is as large
    as the pages one transaction changes; temporary tables and sorts of this
    connection stay in memory too.
    """
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {int(hard_cap_pages)}")
    db.conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    db.conn.execute("PRAGMA temp_store = MEMORY")


def tune_index(db: Database) -> None:
    """Turn FTS5's merges inside COMMIT off (persisted); a no-op when already so."""
    wanted = {"automerge": 0, "usermerge": USER_MERGE, "crisismerge": CRISIS_MERGE}
    config = quote(fts_table(NOTE) + "_config")
    current = dict(db.conn.execute(f"SELECT k, v FROM {config}").fetchall())
    changes = {k: v for k, v in wanted.items() if current.get(k) != v}
    if changes:
        with db.transaction():
            for key, value in changes.items():
                db.conn.execute(f"INSERT INTO {_FTS} ({_FTS}, rank) VALUES (?, ?)", (key, value))


def index_shape(conn: sqlite3.Connection) -> IndexShape:
    """Read the segment counts from FTS5's structure record (its file format, not an API).

    The record: a 4-byte cookie, then varints nLevel, nSegment, nWriteCounter,
    then per level nMerge, nSeg and three varints per segment (eight in the V2
    format that only contentless_delete tables write).
    """
    found = conn.execute(
        f"SELECT block FROM {quote(fts_table(NOTE) + '_data')} WHERE id = ?", [_STRUCTURE_ROWID]
    ).fetchone()
    if found is None:
        return IndexShape(0, 0)
    data: bytes = found[0]
    v2 = data[4:8] == _STRUCTURE_V2
    pos = 8 if v2 else 4
    levels, pos = _varint(data, pos)
    segments, pos = _varint(data, pos)
    _, pos = _varint(data, pos)
    level0, merging = 0, False
    for level in range(levels):
        in_merge, pos = _varint(data, pos)
        count, pos = _varint(data, pos)
        for _ in range(count * (8 if v2 else 3)):
            _, pos = _varint(data, pos)
        level0 = count if level == 0 else level0
        merging = merging or in_merge > 0
    return IndexShape(segments, level0, merging)


def merge_step(conn: sqlite3.Connection, pages: int = MERGE_PAGES) -> bool:
    """Do up to ``pages`` pages of incremental merging; False when none was needed.

    Takes the write lock (raises sqlite3.OperationalError when busy and the
    connection does not wait).
    """
    before = conn.total_changes
    conn.execute(f"INSERT INTO {_FTS} ({_FTS}, rank) VALUES ('merge', ?)", [pages])
    # FTS5's documented test: fewer than 2 changes means there was nothing to merge.
    return conn.total_changes - before >= 2


def checkpoint(conn: sqlite3.Connection, mode: str = "PASSIVE") -> WalState:
    """Run a WAL checkpoint; returns the WAL's frames and how many are now in the file."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"unknown checkpoint mode {mode!r}")
    _busy, frames, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return WalState(max(frames, 0), max(done, 0))


def wal_state(path: Path) -> WalState | None:
    """The WAL's frame count and backfill, read from the ``-shm`` wal-index header.

    None when there is no shared-memory file. The header is SQLite's documented
    file format (native byte order); a torn read only delays a checkpoint.
    """
    try:
        with open(f"{path}-shm", "rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        return None
    if len(head) < 100:
        return None
    order = "<" if sys.byteorder == "little" else ">"
    (max_frame,) = struct.unpack_from(f"{order}I", head, 16)
    (backfill,) = struct.unpack_from(f"{order}I", head, 96)
    return WalState(max_frame, backfill)


def maintain(db: Database, *, max_steps: int = 64, pages: int = MERGE_PAGES) -> MaintenanceReport:
    """Do a bounded amount of merging, then a PASSIVE checkpoint, synchronously.

    For processes without a :class:`Maintainer` (CLI commands, tests): at most
    ``max_steps`` merge steps of ``pages`` pages, each in its own short write
    transaction. ``merge_done`` says whether the index needs no more merging.
    """
    tune_index(db)
    steps, done = 0, False
    while steps < max_steps:
        with db.lock:  # other threads may share the connection: one step at a time
            if not merge_step(db.conn, pages):
                done = True
                break
        steps += 1
    wal = checkpoint(db.conn)
    return MaintenanceReport(steps, done, wal.backfilled, wal.frames, index_shape(db.conn))


def verify_index(db: Database) -> int:
    """Entries in which the full-text index and the live notes disagree (0: it is right).

    Rebuilds a reference index of the live notes in memory and compares every
    (term, note, field, offset) entry with the stored index. Costs a full pass
    over the notes: for tests and health checks, never for the write path.
    """
    assert NOTE.search is not None
    cols = ", ".join(quote(c) for c in NOTE.search.fields)
    live = where_sql(NOTE, NOTE.search.only) or "1"
    conn = db.conn
    conn.execute("ATTACH ':memory:' AS duru_verify")
    try:
        conn.execute(
            f"CREATE VIRTUAL TABLE duru_verify.ref USING fts5({cols}, tokenize='{FTS_TOKENIZER}')"
        )
        conn.execute(
            f"INSERT INTO duru_verify.ref (rowid, {cols})"
            f" SELECT {DOC_ID}, {cols} FROM {quote(NOTE.table)} WHERE {live}"
        )
        # An fts5vocab table can name another schema's index only from temp.
        vocab = "CREATE VIRTUAL TABLE temp.duru_verify_{} USING fts5vocab({}, {}, instance)"
        conn.execute(vocab.format("got", "main", _FTS))
        conn.execute(vocab.format("want", "duru_verify", "ref"))
        got = "SELECT term, doc, col, offset FROM temp.duru_verify_got"
        want = "SELECT term, doc, col, offset FROM temp.duru_verify_want"
        diff = (
            f"SELECT (SELECT count(*) FROM ({got} EXCEPT {want}))"
            f" + (SELECT count(*) FROM ({want} EXCEPT {got}))"
        )
        return int(conn.execute(diff).fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise CorruptDatabase(f"{db.path}: the full-text index cannot be read: {exc}") from exc
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.duru_verify_got")
        conn.execute("DROP TABLE IF EXISTS temp.duru_verify_want")
        conn.execute("DETACH duru_verify")


class Maintainer:
    """A background thread that checkpoints the WAL and merges the index, on its own connection.

    ``Maintainer(target).start()`` ... ``stop()`` then ``check()``, or ``with
    Maintainer(target):``, where ``target`` is the writer's Database (only its
    path is used: the thread never touches ``db.conn``) or a path.
    Each ``tick`` it looks for writes from its own connection (``data_version``
    moves for every connection's commits but its own). Once writes have been
    quiet for ``idle`` seconds it checkpoints and restarts the WAL
    (:attr:`wal_restarts`); then, when level 0 holds ``merge_at`` segments (or
    a merge is under way), it merges in steps of ``merge_pages`` pages,
    ``step_gap`` seconds apart, until there is nothing left or a write shows
    up, and checkpoints and restarts again; while writes go on it only
    checkpoints, once the WAL holds
    ``busy_checkpoint_pages`` frames not yet in the database. It never waits
    for a lock: the write lock held elsewhere means a later tick; so does a
    full disk, counted in :attr:`full_disk_ticks` (the work resumes once there
    is room). Any other error stops it and is kept in :attr:`error`, for
    :meth:`check` to raise: a thread has no caller of its own.
    """

    def __init__(
        self,
        target: Database | str | Path,
        *,
        tick: float = 0.02,
        idle: float = 0.1,
        busy_checkpoint_pages: int = BUSY_CHECKPOINT_PAGES,
        merge_pages: int = MERGE_PAGES,
        step_gap: float = 0.005,
        merge_at: int = QUIET_MERGE_SEGMENTS,
    ) -> None:
        self.path = target.path if isinstance(target, Database) else Path(target)
        self.tick, self.idle = tick, idle
        self.busy_checkpoint_pages = busy_checkpoint_pages
        self.merge_pages = merge_pages
        self.step_gap = step_gap
        self.merge_at = merge_at
        self.checkpoints = 0
        self.merge_steps = 0
        self.wal_restarts = 0
        self.longest_step = 0.0
        self.full_disk_ticks = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ticked = threading.Condition()
        self._ticks = 0
        self._is_settled = False
        self._seen = 0  # the data_version of the last write seen (ours excepted)
        self._restart_failed = False  # in this pause (a reader held the old WAL)
        # The WAL as our restart left it: its frames are only ours, left uncopied on
        # purpose (copying them would make the next commit start the WAL over again).
        self._own_wal: WalState | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Maintainer:
        """Start the thread; RuntimeError when it is already running."""
        if self._thread is not None:
            raise RuntimeError("maintainer already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="duru-maintainer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait until it has ended and closed its connection.

        A step in flight finishes first (it never waits for a lock, so this is
        bounded by one merge step or checkpoint). With ``timeout``, raises a
        retryable StoreError when the thread is still running after that many
        seconds; calling ``stop`` again waits on. Does not raise the thread's
        own error: :meth:`check` does.
        """
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            raise StoreError(
                f"the maintainer of {self.path} did not stop within {timeout} s"
                " (still opening the file, checkpointing or merging); call stop() again to wait",
                retryable=True,
            )
        self._thread = None

    def check(self) -> None:
        """Raise the error that stopped the thread, as duru's error naming the file.

        CorruptDatabase for a damaged file, StoreError for any other failure
        (the original is its ``__cause__``); nothing when no error stopped it.
        """
        failure = self.failure()
        if failure is not None:
            raise failure from self.error

    def failure(self) -> StoreError | None:
        """The error that stopped the thread, as duru's error; None when none did."""
        exc = self.error
        if exc is None:
            return None
        where = f"background maintenance of {self.path} stopped"
        found = store_failure(exc, self.path) if isinstance(exc, sqlite3.Error) else None
        if found is None and isinstance(exc, StoreError):
            found = exc
        if isinstance(found, CorruptDatabase):
            return CorruptDatabase(f"{where}: {found.message}")
        detail = found.message if found is not None else f"{type(exc).__name__}: {exc}"
        return StoreError(f"{where}: {detail} (the WAL and the search index go untended)")

    def wait_settled(self, timeout: float) -> bool:
        """Wait until the index is merged and the WAL checkpointed; False on timeout.

        Checkpointed: every frame but those of the maintainer's own WAL restart.

        Writes committed before the call are taken into account: only a tick
        that starts after it can report the settled state.
        """
        with self._ticked:
            after = self._ticks + 1
            return self._ticked.wait_for(lambda: self._ticks > after and self._is_settled, timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Maintainer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        failure = self.failure()
        if failure is None:
            return
        if exc is not None:  # cleanup never hides the original error
            exc.add_note(str(failure))
            return
        raise failure from self.error

    def _run(self) -> None:
        try:
            with contextlib.closing(connect(self.path)) as conn:
                conn.execute("PRAGMA busy_timeout = 0")
                self._loop(conn)
        except BaseException as exc:  # kept for check(): a thread has no caller
            self.error = exc

    def _loop(self, conn: sqlite3.Connection) -> None:
        self._seen = _data_version(conn)
        last_write = time.monotonic()
        dirty = True  # something may need merging or checkpointing
        while not self._stop.wait(self.tick):
            try:
                version = _data_version(conn)
                if version != self._seen:
                    self._seen, last_write, dirty = version, time.monotonic(), True
                    self._restart_failed, self._own_wal = False, None
                quiet = time.monotonic() - last_write >= self.idle
                dirty = self._tend(conn, dirty, quiet)
            except sqlite3.OperationalError as exc:
                # A lock (also SQLite's recovery of the WAL after another connection's
                # failed write) and a full disk pass: stopping for good would leave the
                # WAL and the index untended, so the work waits for a later tick.
                if not (_is_busy(exc) or _is_full(exc)):
                    raise
                if conn.in_transaction:  # our own connection's, never the application's
                    conn.execute("ROLLBACK")
                if _is_full(exc):
                    self.full_disk_ticks += 1
                dirty = True
            with self._ticked:
                self._ticks += 1
                self._is_settled = not dirty
                self._ticked.notify_all()

    def _tend(self, conn: sqlite3.Connection, dirty: bool, quiet: bool) -> bool:
        """One tick's work; returns whether anything may still need doing."""
        if not quiet:
            # Unknown backlog (no readable wal-index): checkpoint only in pauses.
            wal = wal_state(self.path)
            if wal is not None and wal.backlog >= self.busy_checkpoint_pages:
                self._checkpoint(conn)
            return dirty
        if not dirty:
            return False
        # The WAL first (copied, started over), then the merging: a pause too short
        # for all of it still leaves the next commit an append to a started WAL. What
        # a merge writes is copied, and the WAL started over again, at the next tick.
        wal = self._settle_wal(conn)
        shape = index_shape(conn)
        if shape.merging or shape.level0 >= self.merge_at:
            self._merge(conn)
            return True
        return not (wal.backlog == 0 or wal == self._own_wal)

    def _settle_wal(self, conn: sqlite3.Connection) -> WalState:
        """Checkpoint what is not ours, then start a fully copied WAL over."""
        wal = wal_state(self.path)
        if wal is None or (wal.backlog > 0 and wal != self._own_wal):
            wal = self._checkpoint(conn)
        if wal.backlog == 0 and wal.frames > 0 and not self._restart_failed:
            wal = self._restart_wal(conn, wal)
        return wal

    def _checkpoint(self, conn: sqlite3.Connection) -> WalState:
        self.checkpoints += 1
        return checkpoint(conn)

    def _merge(self, conn: sqlite3.Connection) -> None:
        """Merge step by step until done, or a writer shows up or holds the lock.

        A writer that arrives during a step waits until it ends; the gap after
        each step leaves the lock free for that writer, and its commit (a new
        data_version) then ends the merging.
        """
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                if not merge_step(conn, self.merge_pages):
                    return
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    return
                raise
            self.merge_steps += 1
            self.longest_step = max(self.longest_step, time.perf_counter() - started)
            self._stop.wait(self.step_gap)
            if _data_version(conn) != self._seen:
                return

    def _restart_wal(self, conn: sqlite3.Connection, before: WalState) -> WalState:
        """Start the fully checkpointed WAL (``before``) over with a write of our own.

        SQLite starts the WAL over at the first commit after a complete
        checkpoint and syncs the new WAL header to disk there. Done here, the
        application's next commit appends to a WAL already started, and the sync
        stays off its path. The write records when it happened in ``duru_meta``
        and is left uncopied (copying it would undo the point). Returns the WAL's
        state afterwards; when a reader still held the old WAL (no restart), our
        write is checkpointed at once.
        """
        write_meta(conn, "wal_restarted_at", str(now_ms()))
        wal = wal_state(self.path)
        if wal is not None and wal.frames <= before.frames and wal.backlog == wal.frames:
            self.wal_restarts += 1
            self._own_wal = wal
            return wal
        self._restart_failed = True  # not again until the next write: it would only repeat
        return self._checkpoint(conn)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # The primary code: extended ones such as SQLITE_BUSY_RECOVERY are busy too.
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An SQLite varint (big-endian, 7 bits a byte, 8 in the 9th) at ``pos``."""
    value = 0
    for i in range(9):
        if pos + i >= len(data):
            raise CorruptDatabase("the full-text index structure record is truncated")
        byte = data[pos + i]
        if i == 8:
            return (value << 8) | byte, pos + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    raise AssertionError("unreachable")
