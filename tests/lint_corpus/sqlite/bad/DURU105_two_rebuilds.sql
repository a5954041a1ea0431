-- expect: DURU105
PRAGMA foreign_keys = OFF;
VACUUM INTO 'before-v13.db';
BEGIN;
CREATE TABLE note_tags_new (note_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (note_id, tag));
INSERT INTO note_tags_new (note_id, tag) SELECT note_id, tag FROM note_tags;
DROP TABLE note_tags;
ALTER TABLE note_tags_new RENAME TO note_tags;
CREATE TABLE saved_searches_new (id TEXT PRIMARY KEY, name TEXT NOT NULL, query TEXT NOT NULL);
INSERT INTO saved_searches_new (id, name, query) SELECT id, name, query FROM saved_searches;
DROP TABLE saved_searches;
ALTER TABLE saved_searches_new RENAME TO saved_searches;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
