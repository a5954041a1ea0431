SET lock_timeout = '5s';
SET statement_timeout = '30s';
CREATE TABLE backup_legacy_sync_cursors AS SELECT * FROM legacy_sync_cursors;
DROP TABLE legacy_sync_cursors;
