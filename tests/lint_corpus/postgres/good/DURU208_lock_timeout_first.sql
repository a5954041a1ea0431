-- shows: DURU221
SET lock_timeout = '5s'; SET statement_timeout = '30s';
SET statement_timeout = '60s';
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
