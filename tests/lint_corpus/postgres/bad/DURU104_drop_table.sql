-- expect: DURU104
SET lock_timeout = '5s';
SET statement_timeout = '30s';
DROP TABLE IF EXISTS legacy_sync_cursors;
