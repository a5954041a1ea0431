"""Server migration 0009: when each device last synced, for the devices screen."""

import psycopg


def up(conn: psycopg.Connection) -> None:
    conn.autocommit = True
    conn.execute("SET lock_timeout = '5s'")
    conn.execute("SET statement_timeout = '30s'")
    conn.execute("ALTER TABLE devices ADD COLUMN last_seen_at timestamptz")
    conn.execute(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS devices_last_seen ON devices (last_seen_at)"
    )
    # The backfill runs in batches of 5,000 rows, each its own transaction.
    while True:
        cur = conn.execute(
            """
            UPDATE devices d SET last_seen_at = s.last_sync
            FROM (
                SELECT device_id, max(created_at) AS last_sync
                FROM sync_log
                GROUP BY device_id
            ) s
            WHERE d.id = s.device_id
              AND d.id IN (
                SELECT id FROM devices WHERE last_seen_at IS NULL ORDER BY id LIMIT 5000
              )
            """
        )
        if cur.rowcount == 0:
            break
