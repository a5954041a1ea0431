"""Checks before a run changes anything: integrity, foreign keys, free disk, the write lock.

Every failure raises PreflightFailed with what was found and what to do.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from duru.errors import PreflightFailed
from duru.migrate.config import RunConfig


@dataclass(frozen=True)
class PreflightReport:
    """What the checks found (all passed)."""

    integrity: str
    foreign_keys: str
    database_bytes: int
    free_bytes: int
    needed_bytes: int

    def to_json(self) -> dict[str, object]:
        return {
            "integrity": self.integrity,
            "foreign_keys": self.foreign_keys,
            "database_bytes": self.database_bytes,
            "free_bytes": self.free_bytes,
            "needed_bytes": self.needed_bytes,
        }


def database_bytes(db_path: Path) -> int:
    """Size of the database with its write-ahead log."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def check_disk(db_path: Path, config: RunConfig, backup_dir: Path | None = None) -> tuple[int, int]:
    """(free, needed) bytes; PreflightFailed when free < ``min_free_factor`` x database."""
    size = database_bytes(db_path)
    needed = int(size * config.min_free_factor)
    folder = backup_dir if backup_dir is not None and backup_dir.exists() else db_path.parent
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise PreflightFailed(
            f"not enough free disk beside {db_path}: {_mb(free)} free, {_mb(needed)} needed"
            f" ({config.min_free_factor:g}x the database's {_mb(size)}, for the backup and"
            " the copies); free some space and run again"
        )
    return free, needed


def check_integrity(conn: sqlite3.Connection, db_path: Path) -> None:
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:  # a page too damaged for the check itself
        found = [str(exc)]
    if found != ["ok"]:
        shown = "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
        raise PreflightFailed(
            f"{db_path} fails PRAGMA integrity_check: {shown}. Nothing was changed; restore"
            " the file from a copy or export what can be read before migrating"
        )


def check_foreign_keys(conn: sqlite3.Connection, db_path: Path) -> None:
    problems: dict[str, int] = {}
    for row in conn.execute("PRAGMA foreign_key_check").fetchall():
        key = f"{row[0]} -> {row[2]}"
        problems[key] = problems.get(key, 0) + 1
    if problems:
        listed = ", ".join(f"{k} ({n} rows)" for k, n in sorted(problems.items()))
        raise PreflightFailed(
            f"{db_path} has rows whose referenced row is missing: {listed}. Nothing was"
            " changed; see PRAGMA foreign_key_check"
        )


def preflight(
    conn: sqlite3.Connection, db_path: Path, config: RunConfig, backup_dir: Path | None = None
) -> PreflightReport:
    """Run every check; the caller holds the write lock (a BEGIN IMMEDIATE succeeded).

    Raises PreflightFailed on the first check that fails.
    """
    free, needed = check_disk(db_path, config, backup_dir)
    check_integrity(conn, db_path)
    check_foreign_keys(conn, db_path)
    return PreflightReport("ok", "ok", database_bytes(db_path), free, needed)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
