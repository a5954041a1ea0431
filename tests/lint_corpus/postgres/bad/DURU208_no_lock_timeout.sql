-- expect: DURU208 DURU221
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
ALTER TABLE folders ADD COLUMN icon text;
