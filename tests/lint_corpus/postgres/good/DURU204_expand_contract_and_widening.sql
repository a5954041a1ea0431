SET lock_timeout = '5s'; SET statement_timeout = '30s';
-- Expand: a new column of the new type, filled in batches by the runner.
ALTER TABLE notes ADD COLUMN version_big bigint;
-- A known widening (varchar(50) to varchar(200)) is binary compatible: no rewrite.
ALTER TABLE saved_searches ADD COLUMN label varchar(50);
ALTER TABLE saved_searches ALTER COLUMN label TYPE varchar(200);
