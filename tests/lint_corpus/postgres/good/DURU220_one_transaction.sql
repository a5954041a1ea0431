BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30s';
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
SAVEPOINT before_colors;
CREATE TABLE note_colors (note_id uuid PRIMARY KEY, color text NOT NULL);
RELEASE SAVEPOINT before_colors;
COMMIT;
