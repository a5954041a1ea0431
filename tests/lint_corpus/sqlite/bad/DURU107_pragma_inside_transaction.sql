-- expect: DURU106 DURU107
-- foreign_keys=OFF is ignored inside BEGIN, so the DROP below still cascades.
BEGIN;
PRAGMA foreign_keys = OFF;
CREATE TABLE note_folders (
  note_id TEXT PRIMARY KEY REFERENCES local_notes (id) ON DELETE CASCADE,
  folder_id TEXT NOT NULL
);
-- duru: backup verified
DROP TABLE local_notes;
COMMIT;
