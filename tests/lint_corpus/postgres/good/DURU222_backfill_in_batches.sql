-- shows: DURU208
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN pinned boolean;
UPDATE notes SET pinned = false WHERE id IN (SELECT id FROM notes WHERE pinned IS NULL LIMIT 1000);
