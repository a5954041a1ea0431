-- expect: DURU211
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN folder_id uuid REFERENCES folders (id);
