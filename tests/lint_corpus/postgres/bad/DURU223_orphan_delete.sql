-- expect: DURU223
SET lock_timeout = '5s'; SET statement_timeout = '30s';
DELETE FROM note_tags WHERE NOT EXISTS (SELECT 1 FROM notes WHERE notes.id = note_tags.note_id);
