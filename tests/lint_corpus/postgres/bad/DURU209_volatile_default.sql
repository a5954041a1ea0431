-- expect: DURU209
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN token uuid DEFAULT gen_random_uuid();
ALTER TABLE notes ADD COLUMN words int GENERATED ALWAYS AS (length(body)) STORED;
