-- The migration runner took and verified a backup in its prepare phase.
-- duru: backup verified
DROP TABLE note_links;
