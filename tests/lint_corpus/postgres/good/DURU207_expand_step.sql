-- Expand: the new column arrives next to the old one; the old one is dropped releases later.
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN title_sealed bytea;
