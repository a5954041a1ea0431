"""The device database: opening, transactions, and the one write path.

Every write of an entity row goes through :class:`Database` ``insert``,
``update`` or ``delete``, which put the change's outbox row in the same
transaction, so a change can never exist without the op that syncs it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from duru.errors import CorruptDatabase, NotFound, SchemaMismatch, StoreError, UsageError
from duru.local.constraint import explain_integrity_error
from duru.local.failures import check_wal_owner, raise_failure, store_failure
from duru.local.schema import SCHEMA_VERSION, device_ddl, quote
from duru.local.sync_tables import remember_deletes
from duru.model import (
    MODEL_FINGERPRINT,
    Entity,
    Kind,
    Row,
    complete_row,
    encode_changes,
    entity,
    new_id,
    now_ms,
)

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000  # how long a connection waits for a lock another one holds
_UUID_CHARS = frozenset("0123456789abcdef-")


class Database:
    """A device database file, opened with WAL and foreign keys on.

    Use :meth:`open`. Writes outside :meth:`transaction` run in a transaction
    of their own. ``lock`` is held by whichever thread has a transaction open
    on the connection (:meth:`transaction`, :meth:`snapshot`): application
    threads that share the connection take turns at transactions. A block
    must end on the thread that began it (the lock is the thread's). The
    :class:`~duru.local.maintenance.Maintainer` never uses this connection.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        self._syncs: bool | None = None  # has sync_base (logged in to a server); read once
        self._tombstones: bool | None = None  # has sync_tombstones; read once

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, check: bool = True) -> Database:
        """Open (and with ``create``, make) the device database at ``path``.

        Raises NotFound when the file is absent and ``create`` is false,
        CorruptDatabase when it is not a readable SQLite database (or a ``-wal``
        of another database lies beside it), SchemaMismatch when ``check`` is on
        and it was made by another model, and StoreError when it cannot be
        opened (locked, read-only folder). A file it refuses is left unchanged.

        A file put in the place of ``path`` while it was being opened (a new device's
        first sync installs the account's snapshot so) is opened again, once: the one
        that was there is no longer a database, and saying so would be a false alarm.
        """
        path = Path(path)
        before = _file_id(path)
        try:
            return cls._open(path, create=create, check=check)
        except CorruptDatabase:
            if before is None or _file_id(path) in (None, before):
                raise
            return cls._open(path, create=create, check=check)

    @classmethod
    def _open(cls, path: Path, *, create: bool, check: bool) -> Database:
        fresh = not path.exists() or path.stat().st_size == 0
        if fresh and not create:
            raise NotFound(f"no device database at {path}")
        if not fresh:
            _check_header(path)
            check_wal_owner(path)
        # An existing file turns to WAL only once it is known to be ours: the switch
        # rewrites its header, and a file we refuse must stay as it was.
        conn = connect(path, wal=fresh)
        db = cls(conn, path)
        try:
            if fresh or not db.table_exists("duru_meta"):
                db._create_schema(fresh)
            elif check:
                db.check_version()
            if not fresh:
                db._run("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            raise
        return db

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Run the block in one transaction; nested blocks become savepoints.

        A failure of the file (full disk, lock, damage) is rolled back and raised
        as duru's StoreError saying nothing was written (locks are retryable).
        Another thread's transaction on this connection waits for this one.
        """
        with self.lock:
            name = f"sp{self._depth}"
            begin, commit = (
                ("BEGIN IMMEDIATE", "COMMIT") if self._depth == 0 else (f"SAVEPOINT {name}", None)
            )
            self._run(begin, writing=True)
            self._depth += 1
            try:
                yield self
            except sqlite3.Error as exc:
                self._depth -= 1
                self._undo(name)
                self._fail(exc, writing=True)
            except BaseException:
                self._depth -= 1
                self._undo(name)
                raise
            self._depth -= 1
            try:
                self.conn.execute(commit or f"RELEASE {name}")
            except sqlite3.Error as exc:
                # SQLite rolls back some failed COMMITs itself, not all: end it here, so no
                # half-done transaction stays open on the connection.
                self._undo(name)
                self._fail(exc, writing=True)

    def commit_and_continue(self) -> None:
        """Commit the open transaction and begin the next, inside one ``transaction()`` block.

        For work that commits as it goes (a migration's chunked stream): the
        block's own commit or rollback then covers only what came after. Must
        be called directly in an outermost block (not in a savepoint); raises
        StoreError when the commit or the new BEGIN fails.
        """
        with self.lock:
            if self._depth != 1:
                raise RuntimeError("commit_and_continue needs one open transaction() block")
            self._run("COMMIT", writing=True)
            self._run("BEGIN IMMEDIATE", writing=True)

    @contextmanager
    def snapshot(self) -> Iterator[Database]:
        """Run the block's reads in one read transaction: they all see the same database.

        Inside a transaction the block simply joins it.
        """
        with self.lock:
            if self.conn.in_transaction:
                yield self
                return
            self._run("BEGIN")
            try:
                yield self
            finally:
                self._run("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _undo(self, savepoint: str) -> None:
        # Cleanup must never hide the error that brought us here.
        try:
            if self._depth == 0:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute(f"ROLLBACK TO {savepoint}")
                self.conn.execute(f"RELEASE {savepoint}")
        except sqlite3.Error:
            pass

    def _run(self, sql: str, *, writing: bool = False) -> None:
        try:
            self.conn.execute(sql)
        except sqlite3.Error as exc:
            self._fail(exc, writing=writing)

    def _fail(self, exc: sqlite3.Error, *, writing: bool = False) -> NoReturn:
        raise_failure(exc, self.path, writing=writing)

    # -- reads --------------------------------------------------------------

    def get(self, ent: Entity | str, key: str) -> Row:
        """The row of ``ent`` with key ``key``; NotFound when there is none."""
        row = self.find(ent, key)
        if row is None:
            e = _entity(ent)
            raise NotFound(f"no {e.name} with {e.key} {key}")
        return row

    def find(self, ent: Entity | str, key: str) -> Row | None:
        """The row of ``ent`` with key ``key``, or None."""
        e = _entity(ent)
        try:
            found = self.conn.execute(_sql(e).select_by_key, (key,)).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
        return None if found is None else dict(zip(e.field_names, found, strict=True))

    def resolve_prefix(self, ent: Entity | str, prefix: str, *, min_length: int = 4) -> str:
        """The full key of the one ``ent`` row whose key starts with ``prefix``.

        For ids that people type: a full uuid, or a unique prefix of at least
        ``min_length`` characters (any case). One range scan of the key's index.
        Raises UsageError for a prefix that is too short or matches several
        rows (naming some), NotFound when no row matches.
        """
        e = _entity(ent)
        wanted = prefix.strip().lower()
        if len(wanted) < min_length:
            raise UsageError(
                f"{e.name} id {prefix!r} is too short: give at least {min_length} characters"
            )
        if e.field(e.key).kind is Kind.UUID and not _UUID_CHARS.issuperset(wanted):
            raise NotFound(f"no {e.name} with an id starting {prefix!r}")
        # A range, not LIKE: LIKE cannot use the key's index under the BINARY collation.
        upper = wanted[:-1] + chr(ord(wanted[-1]) + 1)
        key, table = quote(e.key), quote(e.table)
        found = self.conn.execute(
            f"SELECT {key} FROM {table} WHERE {key} >= ? AND {key} < ? ORDER BY {key} LIMIT 3",
            (wanted, upper),
        ).fetchall()
        if not found:
            raise NotFound(f"no {e.name} with an id starting {prefix!r}")
        if len(found) > 1:
            some = ", ".join(str(r[0]) for r in found[:2])
            raise UsageError(
                f"{e.name} id {prefix!r} is ambiguous: it matches {some}"
                f"{' and more' if len(found) > 2 else ''}; give more characters"
            )
        return str(found[0][0])

    def rows(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[Row]:
        """Run a query and return its rows as dicts keyed by column name."""
        try:
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            self._fail(exc)

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        try:
            found = self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
        return None if found is None else found[0]

    def table_exists(self, name: str) -> bool:
        return bool(
            self.scalar("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name=?", [name])
        )

    # -- writes -------------------------------------------------------------

    def insert(self, ent: Entity | str, values: Row, *, outbox: bool = True) -> Row:
        """Insert a row (missing fields defaulted, a new id when none is given).

        Raises InvalidValue for values that do not fit, ConstraintViolation for
        a row SQLite refuses (unknown parent, duplicate).
        """
        e = _entity(ent)
        now = now_ms()
        if e.key == "id" and "id" not in values:
            values = {"id": new_id(), **values}
        row = complete_row(e, values, now)
        with self.transaction():
            self._execute(e, _sql(e).insert, list(row.values()))
            if outbox:
                self._enqueue(e, str(row[e.key]), "upsert", int(row["version"]), now)
        return row

    def update(self, ent: Entity | str, key: str, changes: Row, *, outbox: bool = True) -> Row:
        """Change some fields of a row; ``updated_at`` moves unless given.

        Raises NotFound when there is no such row.
        """
        e = _entity(ent)
        now = now_ms()
        encoded = encode_changes(e, changes)
        encoded.setdefault("updated_at", now)
        sets = ", ".join(f"{quote(k)} = ?" for k in encoded)
        sql = f"UPDATE {quote(e.table)} SET {sets} WHERE {quote(e.key)} = ?"
        with self.transaction():
            current = self.get(e, key)
            if outbox:
                self._keep_base(e, key, current)
            self._execute(e, sql, [*encoded.values(), key])
            if outbox:
                self._enqueue(e, key, "upsert", int(current["version"]), now)
        return {**current, **encoded}

    def delete(self, ent: Entity | str, key: str, *, outbox: bool = True) -> Row:
        """Remove a row for good (the server gets a tombstone); NotFound if absent."""
        e = _entity(ent)
        with self.transaction():
            current = self.get(e, key)
            if outbox:
                self._keep_base(e, key, current)
                self._keep_tombstone(e, key, current)
            self._execute(e, _sql(e).delete_by_key, [key])
            if outbox:
                self._enqueue(e, key, "delete", int(current["version"]), now_ms())
        return current

    def quarantine(self, source: str, table: str, key: str | None, reason: str, row: Row) -> None:
        """Keep a row that could not be placed, with the reason, instead of losing it."""
        self.conn.execute(
            "INSERT INTO quarantine (source, source_table, source_key, reason, row_json,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (source, table, key, reason, _dump_row(row), now_ms()),
        )

    def _keep_base(self, e: Entity, key: str, current: Row) -> None:
        """On a synced device, keep the row as the server last gave it, before its first
        unpushed change: the base of a three-way merge (``duru.sync.merge``).

        Version 0 is no sign that the server lacks the row: ``duru upload`` writes rows at
        the version the uploading device had, 0 for one that never synced, and devices
        pull them so. A row made here and not pushed yet has ops, and gets no base.
        """
        if self._syncs is None:
            self._syncs = self.table_exists("sync_base")
        if not self._syncs:
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO sync_base (entity, row_id, row_json) SELECT ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE entity = ? AND row_id = ?)",
            (e.name, key, _dump_row(current), e.name, key),
        )

    def _keep_tombstone(self, e: Entity, key: str, current: Row) -> None:
        """On a synced device, remember the version deleted here, so the server cannot
        bring the row back with an older version of it (``duru.sync.inbox``)."""
        if self._tombstones is None:
            self._tombstones = self.table_exists("sync_tombstones")
        if self._tombstones:
            remember_deletes(self.conn, [(e.name, key, int(current.get("version") or 0))])

    def _enqueue(self, e: Entity, key: str, kind: str, base_version: int, now: int) -> None:
        self.conn.execute(
            "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (new_id(), e.name, key, kind, base_version, now),
        )

    def _execute(self, e: Entity, sql: str, params: Sequence[object]) -> None:
        try:
            self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise explain_integrity_error(e, exc) from exc

    # -- schema -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        found = self.scalar("SELECT value FROM duru_meta WHERE key = ?", [key])
        return None if found is None else str(found)

    def set_meta(self, key: str, value: str) -> None:
        write_meta(self.conn, key, value)

    def check_version(self) -> None:
        """SchemaMismatch unless the file was made by this schema version and model.

        The message names the command that applies: `duru migrate resume` when a
        migration run recorded in the file is unfinished, else `duru migrate run`.
        """
        version = self.meta("schema_version")
        model = self.meta("model_fingerprint")
        if version == str(SCHEMA_VERSION) and model == MODEL_FINGERPRINT:
            return
        import shlex

        db = shlex.quote(str(self.path))
        unfinished = self._unfinished_migration()
        if unfinished is not None:
            run_id, status = unfinished
            raise SchemaMismatch(
                f"{self.path} is half migrated (migration run {run_id!r} is {status}): finish"
                f" it with `duru migrate resume --db {db}`, or undo it with"
                f" `duru migrate rollback --db {db}`"
            )
        raise SchemaMismatch(
            f"{self.path} has device schema {version} (model {model}); this duru needs "
            f"{SCHEMA_VERSION} (model {MODEL_FINGERPRINT}): run `duru migrate run --db {db}`"
        )

    def _unfinished_migration(self) -> tuple[str, str] | None:
        """(run id, status) of the newest resumable migration run recorded in the file.

        Reads the migration engine's table directly (duru/migrate/state.py, RUNS_TABLE
        and RunRecord.active): the store sits below the engine and may not import it.
        """
        if not self.table_exists("duru_migration_runs"):
            return None
        found = self.conn.execute(
            "SELECT run_id, status FROM duru_migration_runs"
            " WHERE status IN ('running', 'paused', 'failed')"
            " ORDER BY started_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return None if found is None else (str(found[0]), str(found[1]))

    def _create_schema(self, fresh: bool) -> None:
        if not fresh and self.scalar("SELECT count(*) FROM sqlite_schema") > 0:
            raise SchemaMismatch(
                f"{self.path} is an SQLite database but not a duru device database"
                " (to bring in an app database, use `duru import`)"
            )
        with self.transaction():
            for stmt in device_ddl():
                self.conn.execute(stmt)
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.set_meta("model_fingerprint", MODEL_FINGERPRINT)
            self.set_meta("device_id", new_id())


def write_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set ``duru_meta[key]`` on ``conn`` (a connection to a device database)."""
    conn.execute(
        "INSERT INTO duru_meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def connect(path: Path, *, wal: bool = True) -> sqlite3.Connection:
    """An SQLite connection with duru's settings (``wal``: switch the file to WAL).

    Raises CorruptDatabase if the file is unreadable, StoreError (see
    :func:`duru.local.failures.store_failure`) when it is locked or cannot be opened.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        unreadable = CorruptDatabase(f"{path} is not a readable SQLite database: {exc}")
        raise store_failure(exc, path) or unreadable from exc
    return conn


def _file_id(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` names now (device, inode); None when it names none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    if head != SQLITE_HEADER:
        raise CorruptDatabase(f"{path} is not an SQLite database (bad header)")


def _entity(ent: Entity | str) -> Entity:
    return ent if isinstance(ent, Entity) else entity(ent)


def _dump_row(row: Row) -> str:
    return json.dumps(row, ensure_ascii=False, default=_jsonable, sort_keys=True)


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return {"$bytes_hex": value.hex()}
    return str(value)


class _Statements:
    def __init__(self, e: Entity) -> None:
        cols = ", ".join(quote(n) for n in e.field_names)
        table, key = quote(e.table), quote(e.key)
        marks = ", ".join("?" for _ in e.fields)
        self.insert = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
        self.select_by_key = f"SELECT {cols} FROM {table} WHERE {key} = ?"
        self.delete_by_key = f"DELETE FROM {table} WHERE {key} = ?"


def _sql(e: Entity) -> _Statements:
    return _statements(e.name)


@cache
def _statements(name: str) -> _Statements:
    return _Statements(entity(name))
