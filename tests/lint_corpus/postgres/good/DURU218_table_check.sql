SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD CONSTRAINT notes_title_len CHECK (length(title) < 500) NOT VALID;
