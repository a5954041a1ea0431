-- expect: DURU103 DURU104
-- A filtered copy is not a backup: links without a target are in neither table.
CREATE TABLE backup_note_links AS SELECT * FROM note_links WHERE target_id IS NOT NULL;
DROP TABLE note_links;
