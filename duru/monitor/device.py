"""What a device database says about itself: pages, free pages, search segments, WAL, outbox.

Opened read-only (``mode=ro``), so watching a device never writes to it. The device keeps
its sync position (``sync_cursor``) but no time of its last sync: the outbox's oldest row
is what tells a sync that stopped working.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from duru.errors import NotFound
from duru.local.schema import fts_table
from duru.local.staging import partials
from duru.model import ENTITIES, now_ms

_UNFINISHED = ("running", "paused", "failed")


def device_report(path: Path) -> dict[str, Any]:
    """Every device section for the database at ``path``; NotFound when there is none."""
    if not path.is_file():
        raise NotFound(f"no device database at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        page_size = _pragma(conn, "page_size")
        pages = _pragma(conn, "page_count")
        free = _pragma(conn, "freelist_count")
        return {
            "path": str(path),
            "page_size": page_size,
            "pages": pages,
            "free_pages": free,
            "free_ratio": round(free / max(pages, 1), 3),
            "wal_bytes": _size(path.with_name(path.name + "-wal")),
            "search_segments": _segments(conn),
            "outbox": _outbox(conn),
            "sync_cursor": _meta(conn, "sync_cursor"),
            "unfinished_imports": [
                {"path": str(p.path), "kind": p.kind, "running": p.running} for p in partials(path)
            ],
            "unfinished_migrations": _migrations(conn),
        }
    finally:
        conn.close()


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _has(conn: sqlite3.Connection, table: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return found is not None


def _segments(conn: sqlite3.Connection) -> dict[str, int]:
    """FTS5 segments per search table: each merge level holds some; many slow every search."""
    out = {}
    for e in ENTITIES:
        if e.search is not None and _has(conn, f"{fts_table(e)}_idx"):
            found = conn.execute(f'SELECT count(DISTINCT segid) FROM "{fts_table(e)}_idx"')
            out[fts_table(e)] = int(found.fetchone()[0])
    return out


def _outbox(conn: sqlite3.Connection) -> dict[str, Any]:
    depth, oldest = conn.execute("SELECT count(*), min(created_at) FROM outbox").fetchone()
    age = None if oldest is None else round((now_ms() - oldest) / 1000, 1)
    return {"depth": int(depth), "oldest_created_at": oldest, "oldest_age_seconds": age}


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    found = conn.execute("SELECT value FROM duru_meta WHERE key = ?", (key,)).fetchone()
    return None if found is None else str(found[0])


def _migrations(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Device migration runs that did not finish, with rows done and the share that failed."""
    if not _has(conn, "duru_migration_runs"):
        return []
    marks = ", ".join("?" for _ in _UNFINISHED)
    cur = conn.execute(
        "SELECT r.run_id, r.status, r.started_at, r.error,"
        " coalesce(sum(p.rows), 0), coalesce(sum(p.failed), 0)"
        " FROM duru_migration_runs r LEFT JOIN duru_migration_progress p USING (run_id)"
        f" WHERE r.status IN ({marks}) GROUP BY r.run_id ORDER BY r.started_at",
        _UNFINISHED,
    )
    names = ("run_id", "status", "started_at", "error", "rows", "failed")
    runs = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for run in runs:
        run["error_rate"] = round(run["failed"] / max(run["rows"], 1), 4)
    return runs
