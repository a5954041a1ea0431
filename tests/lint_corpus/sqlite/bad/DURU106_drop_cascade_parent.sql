-- expect: DURU106
CREATE TABLE note_reminders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  note_id TEXT NOT NULL REFERENCES local_notes (id) ON DELETE CASCADE,
  remind_at INTEGER
);
-- duru: backup verified
DROP TABLE local_notes;
