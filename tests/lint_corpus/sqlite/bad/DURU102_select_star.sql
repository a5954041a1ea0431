-- expect: DURU102
CREATE TABLE notes_copy (id TEXT PRIMARY KEY, title TEXT, body TEXT, updated_at INTEGER);
INSERT INTO notes_copy SELECT * FROM local_notes;
