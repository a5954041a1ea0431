-- expect: DURU204
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ALTER COLUMN version TYPE bigint;
ALTER TABLE folders ALTER COLUMN sort_order TYPE numeric(10, 2) USING sort_order::numeric;
