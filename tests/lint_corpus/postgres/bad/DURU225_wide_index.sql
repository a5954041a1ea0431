-- expect: DURU225
CREATE INDEX CONCURRENTLY notes_wide ON notes (user_id, folder_id, updated_at, title);
