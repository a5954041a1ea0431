-- expect: DURU218
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER DOMAIN title_text ADD CONSTRAINT title_len CHECK (length(VALUE) < 500);
