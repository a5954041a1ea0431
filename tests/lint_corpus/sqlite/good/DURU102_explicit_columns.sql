CREATE TABLE notes_copy (id TEXT PRIMARY KEY, title TEXT, body TEXT, updated_at INTEGER);
INSERT INTO notes_copy (id, title, body, updated_at)
  SELECT id, title, body, updated_at FROM local_notes;
