"""Encrypted snapshots of a device database: a new device's first sync in one download.

Pulling rows one by one opens every field of every row in Python (about 30 us a note)
and writes each note into the full-text index: about 1,700 notes a second, a minute for
100k notes. A device that has synced can instead upload its whole database, encrypted,
and a new device of the account downloads it, decrypts it and copies its tables in,
full-text index included, then pulls only the changes after the snapshot's cursor.

    upload(db, api, keys)          after a sync: make and send one (``should_upload``)
    fetch(api, keys, into)         download and decrypt the server's one to a file
    install(db_path, path, keys)   copy its tables into an empty device, in one transaction

What the server stores (it never sees inside):

    MAGIC | u32 length | header (JSON: user_id, cursor, schema_version,
          model_fingerprint, size, made_at) | secretstream header (24 bytes)
          | frames: u32 length | XChaCha20-Poly1305 secretstream message

The key is a subkey of the master key (``SNAPSHOT_PERSON``) and the first frame's
additional data is ``MAGIC`` and the header, so the server can neither read it nor
change the header nor swap in another account's snapshot; secretstream chains the
frames, so none can be dropped, reordered or repeated, and only the final tag ends it
(a truncated download is refused). The server may serve an older genuine snapshot:
the pull after it brings everything newer (or asks for a full resync past its horizon).

What a snapshot carries: the model's tables, the full-text index, and the sync tables
that hold what the server sent (``sync_conflicts``, ``sync_tombstones``,
``sync_waiting``). What stays on its device: the outbox (a device uploads only when it
is empty), merge bases, queued resolutions, the quarantine, its device id and its
settings. A snapshot is installed only into a device that holds no rows and never
synced, in one transaction that checks that first: an edit made meanwhile is never
overwritten (the device then pulls rows as before).
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import nacl.bindings as sodium
from nacl.exceptions import CryptoError as SodiumError

from duru.crypto.subkeys import derive_subkey
from duru.errors import CorruptDatabase, SyncError, UsageError
from duru.local.db import BUSY_TIMEOUT_MS, Database
from duru.local.failures import store_failure
from duru.local.schema import SCHEMA_VERSION
from duru.local.staging import fsync_path
from duru.model import ENTITIES, MODEL_FINGERPRINT

MAGIC = b"DURUSNAP\x01"
SNAPSHOT_PERSON = b"duru/snap/v1"
FRAME_BYTES = 1 << 20  # plaintext per secretstream message
MAX_HEADER_BYTES = 4096
# Upload one once the server's newest snapshot is this many changes behind, and at
# least a quarter of all the account's changes: a new device then pulls at most that
# many rows after it (a small account is pulled row by row, which is quick for it).
# ``DURU_SNAPSHOT_EVERY`` sets it; 0 turns uploads off.
SNAPSHOT_EVERY = 10_000
EVERY_VAR = "DURU_SNAPSHOT_EVERY"
SNAPSHOT_KEY = "sync_snapshot_cursor"  # the newest snapshot cursor this device knows of
TRIED_KEY = "sync_snapshot_tried"  # the cursor of its last upload that failed
CHECKED_KEY = "sync_snapshot_checked"  # when the server last said which one it holds
# How often a device asks whether the snapshot it knows of is still on the server.
CHECK_EVERY_SECONDS = 24 * 3600

_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_STREAM_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_LENGTH = struct.Struct(">I")
# What a snapshot carries besides the model's tables (made by every synced device).
_SYNC_TABLES = ("sync_conflicts", "sync_tombstones", "sync_waiting")
_FTS = "notes_fts"
# What stays on the device that made it: cleared from the copy before it is sealed.
_LOCAL_TABLES = (
    "outbox",
    "quarantine",
    "sync_base",
    "sync_conflict_bases",
    "sync_merges",
    "sync_resolutions",
    "sync_seen",
    "sync_sent",
    "sync_sent_rows",
)
_SHARED_META = ("schema_version", "model_fingerprint", "sync_cursor", "sync_account")


class SnapshotUnusable(SyncError):
    """A snapshot that cannot be used here (tampered, cut short, another version)."""


@dataclass(frozen=True)
class Header:
    user_id: str
    cursor: int
    schema_version: str
    model_fingerprint: str
    size: int
    made_at: str

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        try:
            data = json.loads(raw)
            header = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotUnusable(f"its header is not readable ({exc})") from None
        if type(header.cursor) is not int or type(header.size) is not int:
            raise SnapshotUnusable("its header's cursor or size is not a number")
        return header


def snapshot_key(master_key: bytes) -> bytes:
    return derive_subkey(master_key, person=SNAPSHOT_PERSON)


# -- making one ------------------------------------------------------------------------


@dataclass
class Made:
    """A sealed snapshot on disk, ready to send (``frames()``), removed by ``discard()``."""

    path: Path
    header: Header
    key: bytes

    def frames(self) -> Iterator[bytes]:
        """The stored form, piece by piece (one frame each), read from the file as sent."""
        raw = self.header.encode()
        yield MAGIC + _LENGTH.pack(len(raw)) + raw
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        yield sodium.crypto_secretstream_xchacha20poly1305_init_push(state, self.key)
        ad: bytes | None = MAGIC + raw
        left = self.header.size
        with self.path.open("rb") as fh:
            while True:
                plain = fh.read(FRAME_BYTES)
                if not plain and left > 0:  # cut short under us: never an endless upload
                    raise OSError(f"{self.path} is {left} bytes shorter than when it was made")
                left -= len(plain)
                # Never a frame after an empty read: a file cut short ends the stream
                # (the size in the header then tells the reader).
                tag = _TAG_FINAL if left <= 0 or not plain else 0
                sealed = sodium.crypto_secretstream_xchacha20poly1305_push(state, plain, ad, tag)
                ad = None
                yield _LENGTH.pack(len(sealed)) + sealed
                if tag == _TAG_FINAL:
                    return

    def discard(self) -> None:
        discard(self.path)


def make(db: Database, master_key: bytes, user_id: str) -> Made | str:
    """A snapshot of ``db`` (a copy beside it, cleared of what stays on the device), or
    why none can be made now: changes not pushed yet, a resync under way, no cursor."""
    why = not_shareable(db.conn, user_id)  # before copying a big file for nothing
    if why:
        return why
    path = _scratch(db.path, "out")
    try:
        os.close(_private(path))  # the plain copy is the owner's alone, as it is made
        db.conn.execute("VACUUM INTO ?", (str(path),))  # one read transaction: consistent
        with _plain_connection(path) as copy:
            # Checked here, where it is made: the seal then shows it arrived as it was.
            found = copy.execute("PRAGMA quick_check").fetchone()
            if found is None or found[0] != "ok":
                discard(path)
                return f"this device's database fails its check ({found and found[0]})"
            why = not_shareable(copy, user_id)
            if why:
                discard(path)
                return why
            cursor = int(_meta(copy, "sync_cursor") or 0)
            copy.execute("PRAGMA secure_delete = ON")  # cleared pages are zeroed
            copy.execute("BEGIN")
            for table in _LOCAL_TABLES:
                if _has_table(copy, "main", table):
                    copy.execute(f'DELETE FROM "{table}"')
            marks = ", ".join("?" * len(_SHARED_META))
            copy.execute(f"DELETE FROM duru_meta WHERE key NOT IN ({marks})", _SHARED_META)
            # The index keeps the words of deleted and edited notes in its older
            # segments until they are merged: one merge leaves only what the notes say
            # now (and the new device one segment to search).
            if _has_table(copy, "main", _FTS):
                copy.execute(f"INSERT INTO {_FTS} ({_FTS}) VALUES ('optimize')")
            copy.execute("COMMIT")
        header = Header(
            user_id=user_id,
            cursor=cursor,
            schema_version=str(SCHEMA_VERSION),
            model_fingerprint=MODEL_FINGERPRINT,
            size=path.stat().st_size,
            made_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        return Made(path, header, snapshot_key(master_key))
    except BaseException:
        discard(path)
        raise


def not_shareable(copy: sqlite3.Connection, user_id: str) -> str:
    """Why the database of ``copy`` cannot be shared as a snapshot now, or ""."""
    if _meta(copy, "sync_account") not in (None, user_id):
        return "this device's rows are another account's"
    cursor = _meta(copy, "sync_cursor") or "0"
    if not cursor.isdigit() or int(cursor) <= 0:
        return "this device has not pulled yet"
    if _meta(copy, "sync_resync") == "1":
        return "a full resync is under way"
    for table in ("outbox", "sync_resolutions"):
        if _has_table(copy, "main", table) and copy.execute(f'SELECT 1 FROM "{table}"').fetchone():
            return f"this device has changes the server does not have yet ({table})"
    return ""


# -- using one -------------------------------------------------------------------------


def fetch(
    pieces: Iterable[bytes],
    master_key: bytes,
    user_id: str,
    into: Path,
    progress: Callable[[int], None] | None = None,
) -> Header:
    """Decrypt the stored form in ``pieces`` into the file ``into``; its header.

    Raises SnapshotUnusable when it is not a whole, untouched snapshot of this account
    made by this version of duru (``into`` is then removed)."""
    reader = _Reader(iter(pieces))
    try:
        if reader.take(len(MAGIC)) != MAGIC:
            raise SnapshotUnusable("it is not a duru snapshot (or one of a newer format)")
        (size,) = _LENGTH.unpack(reader.take(_LENGTH.size))
        if size > MAX_HEADER_BYTES:
            raise SnapshotUnusable("its header is too long")
        raw = reader.take(size)
        header = Header.decode(raw)
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        try:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(
                state, reader.take(_STREAM_HEADER), snapshot_key(master_key)
            )
        except SodiumError:
            raise SnapshotUnusable("its stream header is damaged") from None
        ad: bytes | None = MAGIC + raw
        written = 0
        with os.fdopen(_private(into), "wb") as file, _Writer(file) as out:
            while True:
                (length,) = _LENGTH.unpack(reader.take(_LENGTH.size))
                if not _ABYTES < length <= FRAME_BYTES + _ABYTES:
                    raise SnapshotUnusable("a frame has an impossible length")
                try:
                    plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                        state, reader.take(length), ad
                    )
                except SodiumError:
                    raise SnapshotUnusable(
                        "it does not open with this account's key: changed, or another account's"
                    ) from None
                if ad is not None:  # the first frame opened: the header is the maker's
                    _check_header(header, user_id)
                ad = None
                out.write(plain)
                written += len(plain)
                if progress is not None:
                    progress(written)
                if tag == _TAG_FINAL:
                    break
        if not reader.at_end():
            raise SnapshotUnusable("bytes follow its end")
        if written != header.size:
            raise SnapshotUnusable(f"it holds {written} bytes, its header says {header.size}")
        return header
    except BaseException:
        discard(into)
        raise


def _check_header(header: Header, user_id: str) -> None:
    """Refuse a genuine snapshot this device cannot use, as soon as its header is known
    to be genuine (after the first frame, not after downloading all of it)."""
    if header.user_id != user_id:
        raise SnapshotUnusable("it is another account's")
    if (header.schema_version, header.model_fingerprint) != (
        str(SCHEMA_VERSION),
        MODEL_FINGERPRINT,
    ):
        raise SnapshotUnusable(
            f"it was made by another version of duru (device schema"
            f" {header.schema_version}, this one {SCHEMA_VERSION})"
        )
    if header.cursor <= 0:
        raise SnapshotUnusable("its cursor is not a cursor")


def install(db_path: Path, path: Path, header: Header) -> bool:
    """Make the device at ``db_path`` the snapshot at ``path``; False (nothing written)
    when the device holds rows, queues changes or has pulled by then.

    When no other connection has the device open, the snapshot file takes its place
    (``_swap``): it is written once, as it came. Otherwise its tables are copied into
    the device's in one transaction (``_copy_in``): SQLite moves the rows of a table
    into an empty one of the same shape with its indexes, the full-text index's own
    tables with them. Either way the check that the device is empty and the change
    are one step under one lock, so an edit made meanwhile is never overwritten.
    The device keeps its id, its account and its settings; it takes the snapshot's
    cursor. Raises SnapshotUnusable when the file does not read or its tables are not
    shaped as here (its maker checked it; the seal shows it is what was made), and
    StoreError when the device cannot be written (a full disk: nothing is written).
    """
    db_path = Path(os.path.realpath(db_path))  # a symlink stays one: its file is the device
    try:
        swapped = _swap(db_path, path, header)
        return _copy_in(db_path, path, header) if swapped is None else swapped
    except sqlite3.DatabaseError as exc:
        failure = store_failure(exc, db_path)
        if failure is not None and not isinstance(failure, CorruptDatabase):
            raise failure from exc
        raise SnapshotUnusable(f"its database does not read ({exc})") from None


def _swap(db_path: Path, path: Path, header: Header) -> bool | None:
    """Put the snapshot file in the device's place; None when another connection has
    the device open (or its schema differs: the copy checks table by table).

    The device is locked exclusively (``locking_mode = EXCLUSIVE``: a connection
    anywhere else makes that fail at once, and none can start while it is held), found
    empty, taken out of WAL (its log checkpointed and removed, so no stale log is ever
    read against the new file) and renamed over. A connection opened on the old file
    while the lock was held finds its header wiped, so it fails instead of writing
    into a file no one will read again.
    """
    lock = sqlite3.connect(db_path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        lock.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            lock.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:  # busy or locked: open elsewhere
            return None
        if not empty_and_new(lock):
            lock.execute("ROLLBACK")
            return False
        if _holds_local(lock) or os.stat(db_path).st_nlink > 1:
            # What stays on the device (an import's quarantine) would go with the old
            # file, and another name of the file would lose its header: copied in.
            lock.execute("ROLLBACK")
            return None
        meta = lock.execute("SELECT key, value FROM duru_meta").fetchall()
        mine = _schema(lock)
        lock.execute("COMMIT")  # the lock stays: exclusive locking mode
        with _plain_connection(path) as new:
            if _schema(new) != mine:
                return None
            if lock.execute("PRAGMA journal_mode = DELETE").fetchone() != ("delete",):
                return None
            _become(new, meta, header)
        was = db_path.stat()
        if (was.st_uid, was.st_gid) != (os.geteuid(), os.getegid()):
            try:  # root syncing another user's device: it stays theirs
                os.chown(path, was.st_uid, was.st_gid)
            except PermissionError:
                return None  # the file would change hands: copied in instead
        os.chmod(path, stat.S_IMODE(was.st_mode))
        fsync_path(path)
        old = os.open(db_path, os.O_WRONLY)
        try:
            os.replace(path, db_path)
            fsync_path(db_path.parent)
            os.pwrite(old, bytes(100), 0)  # the old file's header: no longer a database
        finally:
            os.close(old)
        return True
    finally:
        lock.close()


def _become(new: sqlite3.Connection, meta: list[tuple[str, str]], header: Header) -> None:
    """Make the snapshot file the device: its meta, the snapshot's cursor, nothing of
    the maker's own, WAL like every device database."""
    new.execute("BEGIN")
    for table in _LOCAL_TABLES:
        if _has_table(new, "main", table):
            new.execute(f'DELETE FROM "{table}"')
    new.execute("DELETE FROM duru_meta")
    new.executemany("INSERT INTO duru_meta (key, value) VALUES (?, ?)", meta)
    for key, value in _cursor_meta(header):
        _set_meta(new, key, value)
    new.execute("COMMIT")
    new.execute("PRAGMA journal_mode = WAL")


def _holds_local(conn: sqlite3.Connection) -> bool:
    """Whether the device holds rows of its own in tables a snapshot does not carry."""
    return any(
        conn.execute(f'SELECT 1 FROM main."{table}" LIMIT 1').fetchone()
        for table in _LOCAL_TABLES
        if _has_table(conn, "main", table)
    )


def _cursor_meta(header: Header) -> list[tuple[str, str]]:
    return [
        ("sync_cursor", str(header.cursor)),
        ("sync_resync", "0"),
        ("sync_account", header.user_id),
        (SNAPSHOT_KEY, str(header.cursor)),
        (CHECKED_KEY, str(int(time.time()))),  # it was there: no need to ask tomorrow
    ]


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO main.duru_meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _schema(conn: sqlite3.Connection) -> set[tuple[str, str, str | None]]:
    """What the file is made of (statistics and counters left out: made on the way)."""
    return {
        (kind, name, sql)
        for kind, name, sql in conn.execute("SELECT type, name, sql FROM main.sqlite_schema")
        if name not in ("sqlite_stat1", "sqlite_stat4", "sqlite_sequence")
    }


def _copy_in(db_path: Path, path: Path, header: Header) -> bool:
    """Copy the tables in, in one transaction that checks the device is empty first."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = OFF")  # the copy was checked where it was made
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("ATTACH DATABASE ? AS snap", (str(path),))
        tables = _tables_to_copy(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not empty_and_new(conn):
                conn.execute("ROLLBACK")
                return False
            triggers = conn.execute(
                "SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger'"
            ).fetchall()
            for name, _ in triggers:  # the index is copied whole, not rebuilt row by row
                conn.execute(f'DROP TRIGGER main."{name}"')
            for table in tables:
                conn.execute(f'DELETE FROM main."{table}"')
                conn.execute(f'INSERT INTO main."{table}" SELECT * FROM snap."{table}"')
            for _, sql in triggers:
                conn.execute(sql)
            for key, value in _cursor_meta(header):
                _set_meta(conn, key, value)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True
    finally:
        if not conn.in_transaction:
            try:
                conn.execute("DETACH DATABASE snap")
            except sqlite3.Error:
                pass
        conn.close()


def _tables_to_copy(conn: sqlite3.Connection) -> list[str]:
    """The model's tables, the index's shadow tables and the shared sync tables, each
    checked to be made by the same statement in both (same columns in the same order)."""
    names = [e.table for e in ENTITIES]
    names += [
        name
        for (name,) in conn.execute(
            "SELECT name FROM main.sqlite_schema WHERE type = 'table' ORDER BY name"
        )
        if name.startswith(f"{_FTS}_")
    ]
    names += [t for t in _SYNC_TABLES if _has_table(conn, "snap", t)]
    for name in [*names, _FTS]:  # the index's own statement: same tokenizer, same prefixes
        mine, theirs = _table_sql(conn, "main", name), _table_sql(conn, "snap", name)
        if mine is None or mine != theirs:
            raise SnapshotUnusable(f"its table {name} is not shaped as this device's")
    return names


def empty_and_new(conn: sqlite3.Connection) -> bool:
    """Whether the device on ``conn`` holds no rows, queues nothing and never pulled."""
    cursor = _meta(conn, "sync_cursor", schema="main")
    if cursor not in (None, "0") or _meta(conn, "sync_resync", schema="main") == "1":
        return False
    for table in [e.table for e in ENTITIES] + ["outbox"]:
        if conn.execute(f'SELECT 1 FROM main."{table}" LIMIT 1').fetchone():
            return False
    return True


# -- the upload rule -------------------------------------------------------------------


def behind(db: Database) -> int:
    """How many changes the newest snapshot this device knows of is behind its cursor."""
    cursor = int(db.meta("sync_cursor") or 0)
    marks = [db.meta(SNAPSHOT_KEY), db.meta(TRIED_KEY)]
    return cursor - max(int(m) if m and m.isdigit() else 0 for m in marks)


def every() -> int:
    """Changes behind before a device uploads a new snapshot (0: never)."""
    raw = os.environ.get(EVERY_VAR, "").strip()
    if not raw:
        return SNAPSHOT_EVERY
    if not (raw.isascii() and raw.isdigit()):  # '²' and '５' are digits, not numbers
        raise UsageError(f"{EVERY_VAR} must be a whole number of changes (0: no uploads)")
    return int(raw)


def due(db: Database, lag: int) -> bool:
    """Whether a snapshot ``lag`` changes behind should be replaced: at least
    ``every()`` changes and a quarter of the account's (its cursor: every row took one
    change at least), so a busy big account does not upload its whole database often."""
    least = every()
    return least > 0 and lag >= max(least, int(db.meta("sync_cursor") or 0) // 4)


def check_due(db: Database) -> bool:
    """Whether to ask the server if the snapshot this device knows of is still there:
    at most once a day. A server drops a snapshot older than its tombstone horizon
    (deletes after it were purged, which a device starting from it could not learn);
    a device still counting from it waited for a quarter of the account's changes
    before uploading another, and every new device pulled row by row meanwhile."""
    known = db.meta(SNAPSHOT_KEY)
    if every() == 0 or not known or not known.isdigit() or int(known) == 0:
        return False  # no uploads, or it knows of none (``due`` counts from 0 then)
    last = db.meta(CHECKED_KEY)
    if not last or not last.isdigit():
        return True
    return not 0 <= time.time() - int(last) < CHECK_EVERY_SECONDS  # a clock set back too


def checked(db: Database, on_server: int | None) -> None:
    """Take the server's word for its snapshot: at cursor ``on_server``, or none. The
    one this device knew of may be gone (see ``check_due``); a later upload is counted
    from what is there. Asked again after ``CHECK_EVERY_SECONDS``, so a server that
    always says "none" gets an upload a day at most."""
    with db.transaction():
        db.set_meta(SNAPSHOT_KEY, str(on_server or 0))
        db.set_meta(CHECKED_KEY, str(int(time.time())))


def remember(db: Database, cursor: int, key: str = SNAPSHOT_KEY) -> None:
    """Note that the server holds a snapshot at ``cursor`` (never moves back); with
    ``TRIED_KEY``, that an upload at ``cursor`` failed (the next waits as long)."""
    known = db.meta(key)
    if not known or not known.isdigit() or int(known) < cursor:
        with db.transaction():
            db.set_meta(key, str(cursor))


# -- plumbing --------------------------------------------------------------------------


class _Writer:
    """Writes to ``file`` on a thread of its own, a few frames behind: the next frame is
    read and opened meanwhile (writing, reading the socket and opening all let go of
    the GIL). A failed write is raised at the next ``write`` or on leaving."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="duru-snapshot-write", daemon=True)
        self._thread.start()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None and self._failed is not None:
            raise self._failed

    def write(self, data: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        self._queue.put(data)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._failed is None:
                try:
                    self._file.write(data)
                except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread
                    self._failed = exc


class _Reader:
    """Exact reads over an iterator of byte strings of any sizes (one join per read)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._held: list[bytes | memoryview] = []
        self._have = 0

    def take(self, n: int) -> bytes:
        while self._have < n:
            piece = next(self._pieces, None)
            if piece is None:
                raise SnapshotUnusable("it ends early (cut short on the way?)")
            self._held.append(piece)
            self._have += len(piece)
        joined = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        view = memoryview(joined)
        self._held = [view[n:]] if len(view) > n else []
        self._have -= n
        return bytes(view[:n])

    def at_end(self) -> bool:
        return self._have == 0 and all(not piece for piece in self._pieces)


def scratch_files(db_path: Path) -> list[Path]:
    """Snapshot files a killed process left beside ``db_path``."""
    return sorted(db_path.parent.glob(f"{db_path.name}.snapshot-*.tmp"))


def _scratch(db_path: Path, what: str) -> Path:
    return db_path.with_name(f"{db_path.name}.snapshot-{what}-{os.getpid()}-{time.time_ns()}.tmp")


def _private(path: Path) -> int:
    """A new empty file at ``path`` only its owner can read (a plaintext database)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def scratch_in(db_path: Path) -> Path:
    return _scratch(db_path, "in")


def _plain_connection(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None, check_same_thread=False))


def _meta(conn: sqlite3.Connection, key: str, schema: str = "main") -> str | None:
    found = conn.execute(f"SELECT value FROM {schema}.duru_meta WHERE key = ?", (key,)).fetchone()
    return None if found is None else str(found[0])


def _has_table(conn: sqlite3.Connection, schema: str, name: str) -> bool:
    return _table_sql(conn, schema, name) is not None


def _table_sql(conn: sqlite3.Connection, schema: str, name: str) -> str | None:
    found = conn.execute(
        f"SELECT sql FROM {schema}.sqlite_schema WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return None if found is None else str(found[0])


def discard(path: Path) -> None:
    """Remove a snapshot file (and any journal SQLite left beside it)."""
    for p in [path, *(path.with_name(path.name + end) for end in ("-journal", "-wal", "-shm"))]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
