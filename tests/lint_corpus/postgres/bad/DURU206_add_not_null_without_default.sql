-- expect: DURU206
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN sort_order integer NOT NULL;
