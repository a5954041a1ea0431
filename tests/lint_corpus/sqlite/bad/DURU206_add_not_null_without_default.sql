-- expect: DURU206
ALTER TABLE local_notes ADD COLUMN version INTEGER NOT NULL;
