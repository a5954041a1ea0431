"""The device store's housekeeping, one call each: writer settings, FTS5 merges, WAL checkpoints.

What the :class:`~duru.local.maintenance.Maintainer` thread does in the
background, as plain functions on a connection: the writer's settings
(:func:`configure_writer`) and the index's (:func:`tune_index`), one merge
step (:func:`merge_step`), a checkpoint (:func:`checkpoint`), the index's and
the WAL's state read from their file formats (:func:`index_shape`,
:func:`wal_state`), a bounded synchronous round for processes without a
maintainer (:func:`maintain`), and the proof that the index equals the live
notes (:func:`verify_index`).
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from duru.errors import CorruptDatabase
from duru.local.db import Database
from duru.local.schema import DOC_ID, FTS_TOKENIZER, fts_table, quote, where_sql
from duru.model import NOTE

BUSY_CHECKPOINT_PAGES = 8000  # 32 MiB of 4 KiB pages: checkpoint beside writes past this
HARD_CAP_PAGES = 16_384  # 64 MiB of 4 KiB pages: the writer checkpoints itself past this
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
MERGE_PAGES = 16  # leaf pages per merge step: a step holds the write lock a few ms
USER_MERGE = 4  # FTS5's default: merge a level once it has this many segments
CRISIS_MERGE = 256  # rare enough to stay out of the p99; FTS5 refuses writes at 2000
# In a pause, merge only once level 0 holds this many segments: each merge makes the
# writer's connection reload its page cache on its next write, so not after every note.
QUIET_MERGE_SEGMENTS = 8
# Planner statistics of a table analyzed with fewer rows are dropped (see
# drop_small_statistics): SQLite then takes the table to be big.
SMALL_TABLE = 1000

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
    written, closed). Creating a note goes past that every time: its full-text
    index flush runs under the savepoint. Kept in memory, the journal is as
    large as the pages one transaction changes; temporary tables and sorts of
    this connection stay in memory too.
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
    transaction. ``merge_done`` says whether the index needs no more merging. Planner
    statistics of tables that have grown out of them are dropped first
    (:func:`drop_small_statistics`).
    """
    tune_index(db)
    with db.lock:
        drop_small_statistics(db.conn, only_grown=True)
    steps, done = 0, False
    while steps < max_steps:
        with db.lock:  # other threads may share the connection: one step at a time
            if not merge_step(db.conn, pages):
                done = True
                break
        steps += 1
    wal = checkpoint(db.conn)
    return MaintenanceReport(steps, done, wal.backfilled, wal.frames, index_shape(db.conn))


def drop_small_statistics(conn: sqlite3.Connection, *, only_grown: bool = False) -> list[str]:
    """Drop SQLite's planner statistics (``sqlite_stat1``) of the tables that had fewer
    than ``SMALL_TABLE`` rows when analyzed; with ``only_grown``, only of those that may
    hold that many now (their largest rowid, read at once, is past it). The tables.

    Statistics of a small table outlive it: a device analyzed with 20 notes (the ANALYZE
    that ends a migration run) that then took 20,000 (an import, a first sync) listed its
    trash by scanning every note, 15 ms instead of 0.03, and looked rows up by key the
    same way. Without statistics SQLite takes a table to be big and uses its indexes,
    which suits every query here; statistics of a big table stay near enough as it
    grows. SQLite 3.40's ``PRAGMA optimize`` left such statistics as they were.
    """
    try:
        found = conn.execute("SELECT tbl, stat FROM sqlite_stat1").fetchall()
    except sqlite3.OperationalError:  # never analyzed
        return []
    counted: dict[str, int] = {}
    for table, stat in found:
        first = str(stat).split(" ", 1)[0]
        counted[table] = max(counted.get(table, 0), int(first) if first.isdigit() else 0)
    small = [t for t, n in counted.items() if n < SMALL_TABLE]
    if only_grown:
        small = [t for t in small if _largest_rowid(conn, t) >= SMALL_TABLE]
    if small:
        # In the caller's transaction, if any: a migration step's, or a statement each.
        conn.executemany("DELETE FROM sqlite_stat1 WHERE tbl = ?", [(t,) for t in small])
        conn.execute("ANALYZE sqlite_schema")  # the documented way to reload them
    return small


def _largest_rowid(conn: sqlite3.Connection, table: str) -> int:
    try:
        found = conn.execute(f"SELECT max(rowid) FROM {quote(table)}").fetchone()
    except sqlite3.OperationalError:  # a table without rowid, or gone
        return 0
    return int(found[0] or 0)


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
