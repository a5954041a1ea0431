-- expect: DURU205
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ALTER COLUMN deleted_at SET NOT NULL;
