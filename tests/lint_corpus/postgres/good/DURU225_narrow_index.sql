CREATE INDEX CONCURRENTLY notes_user_updated ON notes (user_id, updated_at) INCLUDE (title);
