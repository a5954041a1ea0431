-- expect: DURU210
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD CONSTRAINT notes_slug_key UNIQUE (user_id, slug);
