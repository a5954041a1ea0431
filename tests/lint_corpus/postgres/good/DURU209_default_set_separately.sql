SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN token uuid;
ALTER TABLE notes ALTER COLUMN token SET DEFAULT gen_random_uuid();
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
