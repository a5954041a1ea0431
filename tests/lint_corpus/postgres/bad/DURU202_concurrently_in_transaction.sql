-- expect: DURU202
SET lock_timeout = '5s';
BEGIN;
CREATE INDEX CONCURRENTLY note_tags_hmac ON note_tags USING hash (tag_hmac);
COMMIT;
