# expect: DURU220
"""Desktop step 8: archive flag. The second BEGIN fails: SQLite does not nest transactions."""


def migrate(conn):
    conn.executescript(
        """
        BEGIN;
        ALTER TABLE notes ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
        BEGIN;
        UPDATE notes SET archived = 1 WHERE deleted_at IS NOT NULL;
        COMMIT;
        COMMIT;
        """
    )
