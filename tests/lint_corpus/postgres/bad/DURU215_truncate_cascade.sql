-- expect: DURU215
SET lock_timeout = '5s'; SET statement_timeout = '30s';
TRUNCATE note_drafts CASCADE;
