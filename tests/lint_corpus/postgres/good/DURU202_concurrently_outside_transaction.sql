SET lock_timeout = '5s';
SET statement_timeout = '30s';
BEGIN;
ALTER TABLE notes ADD COLUMN archived_at timestamptz;
COMMIT;
-- An index build may take minutes; it blocks no writer, so no statement timeout for it.
SET statement_timeout = 0;
CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_archived_at ON notes (archived_at);
DROP INDEX CONCURRENTLY IF EXISTS notes_archived_old;
