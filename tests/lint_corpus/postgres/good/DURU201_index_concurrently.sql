-- shows: DURU201 DURU202
-- Outside any transaction block; the runner checks pg_index.indisvalid afterwards.
SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE INDEX CONCURRENTLY notes_user_updated ON notes (user_id, updated_at);
DROP INDEX CONCURRENTLY notes_old_updated;
-- A table created in this migration is empty: a plain index is fine there.
CREATE TABLE note_versions (user_id uuid NOT NULL, note_id uuid NOT NULL, version bigint NOT NULL);
CREATE INDEX note_versions_note ON note_versions (user_id, note_id);
