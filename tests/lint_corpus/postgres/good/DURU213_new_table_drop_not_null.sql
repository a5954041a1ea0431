SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE TABLE drafts (id uuid PRIMARY KEY, title text NOT NULL);
ALTER TABLE drafts ALTER COLUMN title DROP NOT NULL;
