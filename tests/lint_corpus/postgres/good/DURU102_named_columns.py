"""Copy archived notes into the archive table, matching columns by name (PostgreSQL)."""


def up(conn):
    conn.execute(
        "INSERT INTO notes_archive (id, title, body) "
        "SELECT id, title, body FROM notes WHERE archived"
    )
