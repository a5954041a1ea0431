"""The device's sync bookkeeping tables, made when a device first logs in to a server.

A device that never syncs has none of them and pays nothing for them.

    sync_base        per row with unpushed changes: the server version it was based on,
                     as it was (a three-way merge needs it); kept by the write path
    sync_conflicts   conflict revisions pulled from the server, with their status
    sync_merges      revisions this device's pushes caused, to mark once merged
    sync_resolutions revision statuses to send to the server at the next sync
    sync_waiting     pulled rows whose parent has not arrived yet
    sync_seen        rows seen during a full resync
"""

from __future__ import annotations

import sqlite3

SYNC_DDL = (
    """CREATE TABLE IF NOT EXISTS sync_base (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    row_json TEXT NOT NULL,
    PRIMARY KEY (entity, row_id)
) STRICT""",
    """CREATE TABLE IF NOT EXISTS sync_conflicts (
    id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    server_version INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    row_json TEXT,
    created_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    copy_id TEXT
) STRICT""",
    """CREATE TABLE IF NOT EXISTS sync_merges (
    revision_id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL
) STRICT""",
    "CREATE INDEX IF NOT EXISTS ix_sync_merges_row ON sync_merges (entity, row_id)",
    """CREATE TABLE IF NOT EXISTS sync_resolutions (
    revision_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    copy_id TEXT
) STRICT""",
    """CREATE TABLE IF NOT EXISTS sync_waiting (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    row_json TEXT NOT NULL,
    PRIMARY KEY (entity, row_id)
) STRICT""",
    """CREATE TABLE IF NOT EXISTS sync_seen (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    PRIMARY KEY (entity, row_id)
) STRICT""",
)
SYNC_TABLES = (
    "sync_base",
    "sync_conflicts",
    "sync_merges",
    "sync_resolutions",
    "sync_waiting",
    "sync_seen",
)


def create_sync_tables(conn: sqlite3.Connection) -> None:
    """Create the tables that are missing (call inside a transaction)."""
    for stmt in SYNC_DDL:
        conn.execute(stmt)
