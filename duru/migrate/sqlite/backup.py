"""Verified backups with the SQLite backup API, and restoring one.

A backup is written to ``<name>.partial`` beside its final name and renamed
only once ``PRAGMA integrity_check`` passes on the copy and every table holds
as many rows as in the source, so a backup file that exists is a good one.
The copy and the source counts come from one read transaction, hence one
snapshot, even if another connection writes meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from duru.errors import MigrationError, RollbackFailed
from duru.local.staging import fsync_path
from duru.migrate.ops import quote


@dataclass(frozen=True)
class BackupReport:
    """Where a verified backup is, how big, and the row count of every table."""

    path: Path
    bytes: int
    tables: dict[str, int]
    seconds: float


def backup_path(db_path: Path, run_id: str, backup_dir: Path | None = None) -> Path:
    """``<db>.backups/<run id>.sqlite`` beside the database, or in ``backup_dir``."""
    folder = backup_dir or db_path.with_name(db_path.name + ".backups")
    return folder / f"{run_id}.sqlite"


def take_backup(conn: sqlite3.Connection, dest: Path) -> BackupReport:
    """Copy the database behind ``conn`` to ``dest`` and verify the copy.

    Raises MigrationError when the copy fails its integrity check or its row
    counts differ from the source's (the partial file is removed).
    """
    start = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    conn.execute("BEGIN")
    try:
        counts = table_counts(conn)
        target = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.backup(target)
            # One self-contained file: no -wal beside it to lose when it is moved.
            target.execute("PRAGMA journal_mode = DELETE")
            _verify(target, counts, partial)
        finally:
            target.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        conn.execute("COMMIT")
    fsync_path(partial)
    os.replace(partial, dest)
    fsync_path(dest.parent)
    return BackupReport(dest, dest.stat().st_size, counts, time.perf_counter() - start)


def restore(source: Path, live: Path) -> None:
    """Write ``source`` over the database at ``live`` in one transaction (backup API).

    Other connections see the restored content; a crash mid-way leaves the
    live database as it was. Raises RollbackFailed when it cannot be done.
    """
    if not source.exists():
        raise RollbackFailed(f"backup {source} is missing; cannot restore {live}")
    src = sqlite3.connect(source, isolation_level=None)
    dst = sqlite3.connect(live, isolation_level=None, timeout=30)
    try:
        src.backup(dst)
    except sqlite3.Error as exc:
        raise RollbackFailed(f"could not restore {live} from {source}: {exc}") from exc
    finally:
        src.close()
        dst.close()


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows of every ordinary table (virtual tables are counted through their content)."""
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
        )
    ]
    return {n: int(conn.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0]) for n in names}


def _verify(target: sqlite3.Connection, counts: dict[str, int], path: Path) -> None:
    verdict = [str(r[0]) for r in target.execute("PRAGMA integrity_check").fetchall()]
    if verdict != ["ok"]:
        raise MigrationError(f"backup {path} failed its integrity check: {'; '.join(verdict[:3])}")
    copied = table_counts(target)
    if copied != counts:
        differ = sorted(t for t in set(counts) | set(copied) if counts.get(t) != copied.get(t))
        raise MigrationError(f"backup {path} does not hold the same rows: {', '.join(differ)}")
