"""Device schema upgrade 9, the safe way: explicit columns, nothing dropped or overwritten."""

import sqlite3

COPY_FOLDERS = """
    INSERT INTO folders_new (id, name)
    SELECT id, name FROM local_folders
"""


def upgrade(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE folders_new (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
    conn.execute(COPY_FOLDERS)
    copied = conn.execute("SELECT count(*) FROM folders_new").fetchone()[0]
    source = conn.execute("SELECT count(*) FROM local_folders").fetchone()[0]
    assert copied == source, f"copied {copied} of {source} folders"
