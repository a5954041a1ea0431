PRAGMA foreign_keys = OFF;
BEGIN;
UPDATE local_notes SET title = '' WHERE title IS NULL;
PRAGMA foreign_key_check(local_notes);
COMMIT;
PRAGMA foreign_keys = ON;
