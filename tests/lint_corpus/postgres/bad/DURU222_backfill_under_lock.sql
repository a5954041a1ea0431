-- expect: DURU222
BEGIN;
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN pinned boolean;
UPDATE notes SET pinned = false;
COMMIT;
