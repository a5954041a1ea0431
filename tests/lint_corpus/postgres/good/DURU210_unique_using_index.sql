CREATE UNIQUE INDEX CONCURRENTLY notes_slug_idx ON notes (user_id, slug);
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD CONSTRAINT notes_slug_key UNIQUE USING INDEX notes_slug_idx;
