-- expect: DURU103
-- The "rename the old table away" order of a rebuild, filtered by an inner join.
PRAGMA foreign_keys = OFF;
-- duru: backup verified
BEGIN;
ALTER TABLE note_links RENAME TO note_links_old;
CREATE TABLE note_links (source_id TEXT NOT NULL, target_id TEXT, target_title TEXT NOT NULL);
INSERT INTO note_links (source_id, target_id, target_title)
  SELECT l.source_id, l.target_id, l.target_title
  FROM note_links_old AS l JOIN local_notes AS n ON n.id = l.source_id;
DROP TABLE note_links_old;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
