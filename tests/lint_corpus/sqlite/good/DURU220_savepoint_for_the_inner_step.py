"""Desktop step 8: archive flag, with a savepoint around the backfill (SQLite nests those)."""


def migrate(conn):
    conn.executescript(
        """
        BEGIN;
        ALTER TABLE notes ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
        SAVEPOINT backfill;
        UPDATE notes SET archived = 1 WHERE deleted_at IS NOT NULL;
        RELEASE backfill;
        COMMIT;
        """
    )
