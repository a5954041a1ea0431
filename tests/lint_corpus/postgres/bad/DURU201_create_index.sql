-- expect: DURU201
SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE INDEX notes_user_updated ON notes (user_id, updated_at);
DROP INDEX notes_old_updated;
