-- expect: DURU207
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes RENAME COLUMN title_enc TO title_sealed;
ALTER TABLE folders DROP COLUMN legacy_path;
ALTER TABLE saved_searches RENAME TO searches;
