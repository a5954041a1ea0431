-- expect: DURU002 DURU207
SET lock_timeout = '5s';
SET statement_timeout = '30s';
-- duru: allow DURU207
ALTER TABLE notes DROP COLUMN legacy_body;
