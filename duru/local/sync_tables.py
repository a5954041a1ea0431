"""The device's sync bookkeeping tables, made when a device first logs in to a server.

A device that never syncs has none of them and pays nothing for them.

    sync_base        per row with unpushed changes: the server version it was based on,
                     as it was (a three-way merge needs it); kept by the write path
    sync_conflicts   conflict revisions pulled from the server, with their status
    sync_conflict_bases  per conflict this device's merge found: the base it merged
                     against, so ``--keep mine`` takes the clashing side only
    sync_merges      revisions this device's pushes caused, to mark once merged
    sync_resolutions revision statuses to send to the server at the next sync
    sync_waiting     pulled rows whose parent has not arrived yet
    sync_seen        rows seen during a full resync
    sync_sent        the newest op id of each row a push sent whose answer is not
                     recorded yet (the client killed, the link cut): the next push of
                     that row carries it, so the server takes the row as based on the
                     write it applied then, however many edits came after
    sync_sent_rows   of those rows that have a merge base, the row as that push sent
                     it: when the server answers ``rebase`` (it applied that write), the
                     write is the merge base, as the server holds it at that version
    sync_tombstones  rows deleted here or by a pulled tombstone: the newest version of
                     the delete this device knows, so the server cannot bring the row
                     back with an older genuine version (``duru.sync.inbox``). One row
                     per row ever deleted (about 60 bytes), dropped when the row lives
                     again; never pruned by age or by the server's tombstone horizon:
                     the server says where its horizon is, and could move it to make
                     devices forget, then bring rows back

A device that logged in before a table was added gets it at its next sync
(``duru.sync.inbox.ensure_tables``): these tables are made when missing, not by a
schema migration, and ``sync_tombstones`` starts empty there (rows deleted before the
upgrade are not protected; see the README's threat section).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from duru.local.schema import keyed_rows

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
    """CREATE TABLE IF NOT EXISTS sync_conflict_bases (
    conflict_id TEXT PRIMARY KEY,
    row_json TEXT NOT NULL
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
    """CREATE TABLE IF NOT EXISTS sync_sent (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    PRIMARY KEY (entity, row_id, op_id)
) STRICT, WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS sync_sent_rows (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    row_json TEXT NOT NULL,
    PRIMARY KEY (entity, row_id, op_id)
) STRICT""",
    # WITHOUT ROWID: one b-tree, about 60 bytes a deleted row.
    """CREATE TABLE IF NOT EXISTS sync_tombstones (
    entity TEXT NOT NULL,
    row_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (entity, row_id)
) STRICT, WITHOUT ROWID""",
)
SYNC_TABLES = (
    "sync_base",
    "sync_conflicts",
    "sync_conflict_bases",
    "sync_merges",
    "sync_resolutions",
    "sync_waiting",
    "sync_seen",
    "sync_sent",
    "sync_sent_rows",
    "sync_tombstones",
)


def create_sync_tables(conn: sqlite3.Connection) -> None:
    """Create the tables that are missing (call inside a transaction)."""
    for stmt in SYNC_DDL:
        conn.execute(stmt)


def remember_deletes(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, int]]) -> None:
    """Keep (entity, row id, version) of deleted rows in ``sync_tombstones``; an older
    version never lowers one kept already. Call in the transaction of the delete."""
    conn.executemany(
        "INSERT INTO sync_tombstones (entity, row_id, version) VALUES (?, ?, ?)"
        " ON CONFLICT (entity, row_id) DO UPDATE SET version = excluded.version"
        " WHERE excluded.version > sync_tombstones.version",
        [r for r in rows if r[2] > 0],
    )


def deleted_versions(
    conn: sqlite3.Connection, entity: str, ids: list[str]
) -> Iterator[tuple[str, int]]:
    """(row id, version kept) of the rows of ``entity`` among ``ids`` in ``sync_tombstones``;
    found by index (``keyed_rows``)."""
    for key, version in keyed_rows(
        conn, "row_id, version", "sync_tombstones", "row_id", ids, " AND entity = ?", [entity]
    ):
        yield str(key), int(version)
