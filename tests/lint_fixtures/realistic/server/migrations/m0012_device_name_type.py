"""Server migration 0012: device names were varchar(64); some phones report longer ones."""

import psycopg


def up(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '5s'")
        conn.execute("SET LOCAL statement_timeout = '30s'")
        conn.execute("ALTER TABLE devices ALTER COLUMN name TYPE varchar(255)")
        conn.execute("ALTER TABLE devices ALTER COLUMN name TYPE text")
