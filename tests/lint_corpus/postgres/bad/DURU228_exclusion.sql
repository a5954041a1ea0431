-- expect: DURU228
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE reminders ADD CONSTRAINT reminders_no_overlap EXCLUDE USING gist (note_id WITH =, during WITH &&);
