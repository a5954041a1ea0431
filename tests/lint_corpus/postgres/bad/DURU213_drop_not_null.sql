-- expect: DURU213
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ALTER COLUMN title DROP NOT NULL;
