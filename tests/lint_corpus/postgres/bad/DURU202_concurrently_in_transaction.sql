-- expect: DURU202
SET lock_timeout = '5s'; SET statement_timeout = '30s';
BEGIN;
CREATE INDEX CONCURRENTLY note_tags_hmac ON note_tags USING hash (tag_hmac);
COMMIT;
