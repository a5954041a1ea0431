-- shows: DURU220
BEGIN;
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE note_tags ADD CONSTRAINT note_tags_note_fk FOREIGN KEY (note_id) REFERENCES notes (id) NOT VALID;
COMMIT;
BEGIN;
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE note_tags VALIDATE CONSTRAINT note_tags_note_fk;
COMMIT;
