-- expect: DURU101
-- Duplicate (note_id, tag) rows vanish here, and nobody counts them.
INSERT OR IGNORE INTO note_tags_new (note_id, tag)
SELECT note_id, tag FROM note_tags;
