"""Device schema upgrade 9 of the old Python sync tool."""

# expect: DURU101 DURU102
import sqlite3


def upgrade(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE folders_new (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
    conn.execute(
        "INSERT OR REPLACE INTO folders_new "  # later duplicates win, silently
        "SELECT * FROM local_folders"
    )
