-- note_tags declares REFERENCES notes ON DELETE CASCADE (below); with enforcement off
-- outside the transaction, DROP TABLE notes deletes no tag link.
CREATE TABLE note_tags (note_id TEXT REFERENCES notes (id) ON DELETE CASCADE, tag TEXT);
VACUUM INTO 'before-rebuild.sqlite';
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE notes_new (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '');
INSERT INTO notes_new (id, title) SELECT id, title FROM notes;
DROP TABLE notes;
ALTER TABLE notes_new RENAME TO notes;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
