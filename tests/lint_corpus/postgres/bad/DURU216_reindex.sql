-- expect: DURU216
SET lock_timeout = '5s'; SET statement_timeout = '30s';
REINDEX INDEX notes_user_seq;
