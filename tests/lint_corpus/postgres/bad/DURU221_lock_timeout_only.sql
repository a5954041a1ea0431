-- expect: DURU221
SET lock_timeout = '5s';
ALTER TABLE notes ADD COLUMN pinned boolean;
