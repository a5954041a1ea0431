CREATE TABLE backup_note_links AS SELECT * FROM note_links;
DROP TABLE note_links;
