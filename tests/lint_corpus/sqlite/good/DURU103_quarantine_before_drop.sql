-- duru: backup verified
CREATE TABLE note_tasks_new (id TEXT PRIMARY KEY, note_id TEXT NOT NULL, content TEXT NOT NULL);
CREATE TABLE note_tasks_quarantine (id TEXT, note_id TEXT, content TEXT, reason TEXT NOT NULL);
INSERT INTO note_tasks_quarantine (id, note_id, content, reason)
  SELECT id, note_id, content, 'note no longer exists' FROM note_tasks
  WHERE note_id NOT IN (SELECT id FROM local_notes);
INSERT INTO note_tasks_new (id, note_id, content)
  SELECT id, note_id, content FROM note_tasks
  WHERE note_id IN (SELECT id FROM local_notes);
DROP TABLE note_tasks;
