-- expect: DURU201
SET lock_timeout = '5s';
CREATE INDEX notes_user_updated ON notes (user_id, updated_at);
DROP INDEX notes_old_updated;
