SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes ADD CONSTRAINT notes_deleted_at_nn CHECK (deleted_at IS NOT NULL) NOT VALID;
ALTER TABLE notes VALIDATE CONSTRAINT notes_deleted_at_nn;
ALTER TABLE notes ALTER COLUMN deleted_at SET NOT NULL;
ALTER TABLE notes DROP CONSTRAINT notes_deleted_at_nn;
