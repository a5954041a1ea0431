SET lock_timeout = '5s';
SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN color text;
COMMENT ON COLUMN notes.color IS 'one of eight hex values the app offers';
