-- expect: DURU220
SET lock_timeout = '5s'; SET statement_timeout = '30s';
BEGIN;
ALTER TABLE notes ADD COLUMN pinned boolean;
BEGIN;
ALTER TABLE folders ADD COLUMN icon text;
COMMIT;
BEGIN;
ALTER TABLE tags ADD COLUMN color text;
