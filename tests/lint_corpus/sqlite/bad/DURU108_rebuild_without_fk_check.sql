-- expect: DURU108
PRAGMA foreign_keys = OFF;
VACUUM INTO 'before-v13.db';
BEGIN;
CREATE TABLE local_folders_new (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  parent_id TEXT REFERENCES local_folders_new (id)
);
INSERT INTO local_folders_new (id, name, parent_id) SELECT id, name, parent_id FROM local_folders;
DROP TABLE local_folders;
ALTER TABLE local_folders_new RENAME TO local_folders;
COMMIT;
PRAGMA foreign_keys = ON;
