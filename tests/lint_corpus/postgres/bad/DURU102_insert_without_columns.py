# expect: DURU102
"""Copy archived notes into the archive table (PostgreSQL)."""


def up(conn):
    conn.execute("INSERT INTO notes_archive SELECT id, title, body FROM notes WHERE archived")
