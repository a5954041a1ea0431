"""A version 11 file, opened read-only and read by column name.

The file is opened with ``mode=ro`` (not ``immutable=1``, which would skip a
write-ahead log that holds the newest rows), so the import can never change
it. Rows come back as ``{column name: value}``: nothing depends on the
position of a column, which differs between files whose columns were added
later by ALTER TABLE.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote as url_quote

from duru.errors import CorruptDatabase, NotFound, SchemaMismatch, StoreError
from duru.local.db import SQLITE_HEADER
from duru.local.legacy.spec import (
    IGNORED_PREFIXES,
    IGNORED_TABLES,
    LEGACY_TABLES,
    LEGACY_VERSION,
)
from duru.local.schema import quote

# How long to wait for the app's own write to finish before giving up.
_BUSY_TIMEOUT_MS = 1000
# PRAGMA table_xinfo: 1 marks the hidden columns of a virtual table (not data).
_HIDDEN_VTAB_COLUMN = 1


class SourceRow(NamedTuple):
    """One row of a legacy table: its rowid and every column by name, as stored."""

    rowid: int
    values: dict[str, object]


class LegacyReader:
    """Read access to a version 11 file; use :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._columns: dict[str, tuple[str, ...]] = {}

    @classmethod
    def open(cls, path: Path) -> LegacyReader:
        """Open ``path`` read-only and check it is a version 11 file.

        Raises NotFound when there is no file, CorruptDatabase when it is not
        a readable, intact SQLite database, StoreError (retryable) when the
        app holds it locked, and SchemaMismatch naming every table or column
        a version 11 file must have and this one lacks.
        """
        _check_file(path)
        conn = _connect_read_only(path)
        reader = cls(conn, path)
        try:
            reader._check_integrity()
            reader._check_schema()
        except BaseException:
            conn.close()
            raise
        return reader

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LegacyReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        found = self._query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        return [str(r[0]) for r in found]

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def unknown_tables(self) -> list[str]:
        """Tables that are neither version 11 tables nor SQLite's own."""
        known = {t.name for t in LEGACY_TABLES} | IGNORED_TABLES
        return [t for t in self.tables() if t not in known and not t.startswith(IGNORED_PREFIXES)]

    def columns(self, table: str) -> tuple[str, ...]:
        """The table's columns in storage order (virtual tables' hidden columns left out)."""
        if table not in self._columns:
            found = self._query(f"PRAGMA table_xinfo({quote(table)})")
            self._columns[table] = tuple(
                str(r[1]) for r in found if int(r[6]) != _HIDDEN_VTAB_COLUMN
            )
        return self._columns[table]

    def count(self, table: str, column: str | None = None) -> int:
        """Rows of ``table``; with ``column``, the rows where it is not NULL."""
        what = "*" if column is None else quote(column)
        return int(self._query(f"SELECT count({what}) FROM {quote(table)}")[0][0])

    def rows(self, table: str) -> Iterator[SourceRow]:
        """Every row of ``table`` in rowid order; CorruptDatabase if the file breaks mid-way."""
        names = self.columns(table)
        base = f"SELECT rowid, {_column_list(names)} FROM {quote(table)}"
        last: int | None = None
        while True:
            sql, params = (base, ()) if last is None else (f"{base} WHERE rowid > ?", (last,))
            try:
                for found in self.conn.execute(f"{sql} ORDER BY rowid", params):
                    last = int(found[0])
                    yield SourceRow(last, dict(zip(names, found[1:], strict=True)))
                return
            except sqlite3.DatabaseError as exc:
                # Read on from the row that held text which is not UTF-8.
                if not self._tolerate_bad_text(exc):
                    raise _corrupt(self.path, exc) from exc

    def row(self, table: str, rowid: int) -> SourceRow:
        """The row of ``table`` with ``rowid``; NotFound when there is none."""
        names = self.columns(table)
        sql = f"SELECT {_column_list(names)} FROM {quote(table)} WHERE rowid = ?"
        try:
            found = self._query(sql, (rowid,))
        except StoreError as exc:
            if not self._tolerate_bad_text(exc):
                raise
            found = self._query(sql, (rowid,))
        if not found:
            raise NotFound(f"{table} has no row {rowid}")
        return SourceRow(rowid, dict(zip(names, found[0], strict=True)))

    def _tolerate_bad_text(self, exc: Exception) -> bool:
        """On the first text that is not UTF-8, decode the slow way from then on.

        Such text then comes back as bytes, so its row is quarantined rather
        than the read stopped. False when ``exc`` is another error.
        """
        if "decode" not in str(exc) or self.conn.text_factory is _decode_text:
            return False
        self.conn.text_factory = _decode_text
        return True

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.conn.execute(sql, params).fetchall())
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def _check_integrity(self) -> None:
        problems = [str(r[0]) for r in self._query("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise CorruptDatabase(f"{self.path} fails its integrity check: {problems[0]}")

    def _check_schema(self) -> None:
        version = int(self._query("PRAGMA user_version")[0][0])
        # 0: a file whose app never set the version; the tables decide then.
        if version not in (0, LEGACY_VERSION):
            raise SchemaMismatch(
                f"{self.path} has device schema version {version}; the import reads version"
                f" {LEGACY_VERSION}"
            )
        missing = self._missing()
        if missing:
            raise SchemaMismatch(
                f"{self.path} is not a version {LEGACY_VERSION} Duru Notes database: "
                + "; ".join(missing)
            )

    def _missing(self) -> list[str]:
        present = set(self.tables())
        out = []
        for spec in LEGACY_TABLES:
            if spec.name not in present:
                if not spec.optional:
                    out.append(f"missing table {spec.name}")
                continue
            have = {c.lower() for c in self.columns(spec.name)}
            lacking = [c for c in spec.required_columns if c not in have]
            if lacking:
                out.append(f"table {spec.name} lacks column(s) {', '.join(lacking)}")
        return out


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise NotFound(f"no legacy database at {path}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    if head != SQLITE_HEADER:
        raise CorruptDatabase(f"{path} is not an SQLite database (bad header)")


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # Bytes, so a path that is not UTF-8 is quoted byte by byte.
    uri = f"file:{url_quote(os.fsencode(path.resolve()))}?mode=ro"
    try:
        return _connect(uri)
    except sqlite3.DatabaseError as exc:
        if not _wal_beyond_reach(path):
            raise _corrupt(path, exc) from exc
    # A WAL file in a folder we cannot write: SQLite cannot make the -shm it needs to
    # read it. With no -wal beside it there is nothing but the file to read, and
    # immutable=1 reads it alone (a checkpointed app database, a backup copy).
    if os.path.exists(f"{path}-wal") and os.path.getsize(f"{path}-wal") > 0:
        raise StoreError(
            f"{path} has changes still in {path.name}-wal, and its folder is read-only, so"
            " SQLite cannot read them: copy the file and its -wal to a writable folder"
        )
    try:
        return _connect(f"{uri}&immutable=1")
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from exc


def _connect(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # SQLite opens the file (and a WAL's -shm) only at the first read: fail here.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _wal_beyond_reach(path: Path) -> bool:
    """True for a WAL-mode file whose -shm is missing and cannot be made (read-only folder)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(20)
    except OSError:
        return False
    wal_mode = len(head) == 20 and head[18] == 2 and head[19] == 2
    shm = Path(f"{path}-shm")
    return wal_mode and not shm.exists() and not os.access(path.parent, os.W_OK)


def _decode_text(raw: bytes) -> str | bytes:
    # Text that is not UTF-8 stays bytes, so one bad value quarantines its row.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _column_list(names: tuple[str, ...]) -> str:
    return ", ".join(quote(n) for n in names)


def _corrupt(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """CorruptDatabase, unless the file is only locked by its app (retryable then)."""
    if "locked" in str(exc) or "busy" in str(exc):
        return StoreError(f"{path} is locked by another program: {exc}", retryable=True)
    return CorruptDatabase(f"{path} cannot be read as an SQLite database: {exc}")
