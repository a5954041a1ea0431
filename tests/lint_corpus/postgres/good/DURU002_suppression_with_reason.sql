SET lock_timeout = '5s';
SET statement_timeout = '30s';
-- duru: allow DURU207 because no release since 2.4 reads legacy_body
ALTER TABLE notes DROP COLUMN legacy_body;
