"""Server migration 0010: the sync log keeps 90 days; older rows were never read."""

import psycopg

RETENTION_DAYS = 90


def up(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '5s'")
        conn.execute("SET LOCAL statement_timeout = '120s'")
        conn.execute("LOCK TABLE sync_log IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(
            "DELETE FROM sync_log WHERE created_at < now() - make_interval(days => %s)",
            (RETENTION_DAYS,),
        )
