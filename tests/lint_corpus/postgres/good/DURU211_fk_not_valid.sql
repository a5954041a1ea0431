SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN folder_id uuid;
ALTER TABLE notes ADD CONSTRAINT notes_folder_fk FOREIGN KEY (folder_id) REFERENCES folders (id) NOT VALID;
