SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE note_tags
  ADD CONSTRAINT note_tags_note_fk FOREIGN KEY (user_id, note_id) REFERENCES notes (user_id, id)
  NOT VALID;
ALTER TABLE note_tags VALIDATE CONSTRAINT note_tags_note_fk;
ALTER TABLE notes ADD CONSTRAINT notes_kind_check CHECK (kind IN ('note', 'checklist')) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_kind_check;
