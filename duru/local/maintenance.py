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
price: a commit by another connection makes the writer drop its page cache at
its next transaction, so the first write after each merge or WAL restart
reads its pages again; hence merging only every few segments. An error that
stops the thread is kept and reported by :meth:`Maintainer.check`
(``DeviceStore.close`` calls it), and :meth:`Maintainer.stop` returns only
once the thread has ended and closed its connection.

The trade-offs. While writes go on without a pause, level 0 collects one
small segment per transaction: a query probes more b-trees until the next
pause, and after :data:`CRISIS_MERGE` such writes one of them still pays for
merging them all (a rare spike instead of a frequent one); likewise the WAL
grows to :data:`BUSY_CHECKPOINT_PAGES` frames before a checkpoint runs beside
the writes. A merge step holds the write
lock, longer when a long run of writes left hundreds of segments (each step
re-reads every input segment), so a write that arrives during one waits for it. A process that
writes without a maintainer should call :func:`maintain` now and then (a CLI
command after its writes, say). Results never depend on merge state: FTS5
reads every segment, merged or not, and :func:`verify_index` proves the index
equals the live notes. The functions the thread calls are in
:mod:`duru.local.housekeeping` (re-exported here); what the trade-offs cost
is measured by ``benchmarks/bench_device.py`` and noted in the CHANGELOG.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType

from duru.errors import CorruptDatabase, StoreError
from duru.local.db import Database, connect, write_meta
from duru.local.failures import store_failure
from duru.local.housekeeping import (
    BUSY_CHECKPOINT_PAGES,
    CRISIS_MERGE,
    HARD_CAP_PAGES,
    JOURNAL_SIZE_LIMIT,
    MERGE_PAGES,
    QUIET_MERGE_SEGMENTS,
    USER_MERGE,
    IndexShape,
    MaintenanceReport,
    WalState,
    checkpoint,
    configure_writer,
    index_shape,
    maintain,
    merge_step,
    tune_index,
    verify_index,
    wal_state,
)
from duru.model import now_ms

__all__ = [
    "BUSY_CHECKPOINT_PAGES",
    "CRISIS_MERGE",
    "HARD_CAP_PAGES",
    "JOURNAL_SIZE_LIMIT",
    "MERGE_PAGES",
    "QUIET_MERGE_SEGMENTS",
    "USER_MERGE",
    "IndexShape",
    "MaintenanceReport",
    "Maintainer",
    "WalState",
    "checkpoint",
    "configure_writer",
    "index_shape",
    "maintain",
    "merge_step",
    "tune_index",
    "verify_index",
    "wal_state",
]


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
