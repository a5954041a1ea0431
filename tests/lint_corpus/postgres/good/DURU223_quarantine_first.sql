SET lock_timeout = '5s'; SET statement_timeout = '30s';
INSERT INTO quarantine_note_tags (note_id, tag_id, reason)
SELECT note_id, tag_id, 'note missing' FROM note_tags
WHERE NOT EXISTS (SELECT 1 FROM notes WHERE notes.id = note_tags.note_id);
DELETE FROM note_tags WHERE NOT EXISTS (SELECT 1 FROM notes WHERE notes.id = note_tags.note_id);
