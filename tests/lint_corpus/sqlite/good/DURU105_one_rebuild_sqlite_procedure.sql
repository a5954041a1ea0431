-- shows: DURU105 DURU106 DURU108
-- SQLite's documented rebuild, one table per migration, foreign keys off outside the transaction.
PRAGMA foreign_keys = OFF;
VACUUM INTO 'before-v13.db';
BEGIN;
CREATE TABLE note_reminders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  note_id TEXT NOT NULL REFERENCES local_notes (id) ON DELETE CASCADE,
  remind_at INTEGER
);
CREATE TABLE local_notes_new (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL
);
INSERT INTO local_notes_new (id, title, body, updated_at)
  SELECT id, coalesce(title, ''), coalesce(body, ''), updated_at FROM local_notes;
DROP TABLE local_notes;
ALTER TABLE local_notes_new RENAME TO local_notes;
CREATE INDEX local_notes_updated_at ON local_notes (updated_at);
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
