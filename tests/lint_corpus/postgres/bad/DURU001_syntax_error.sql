-- expect: DURU001
SET lock_timeout = '5s';
ALTER TABLE notes ALTER COLUMN version TYPE;
