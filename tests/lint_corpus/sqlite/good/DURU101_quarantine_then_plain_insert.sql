-- Keep one row per (note_id, tag); the duplicates go to a quarantine table with a reason.
CREATE TABLE note_tags_quarantine (note_id TEXT, tag TEXT, reason TEXT NOT NULL);
INSERT INTO note_tags_quarantine (note_id, tag, reason)
  SELECT note_id, tag, 'duplicate (note_id, tag)'
  FROM note_tags
  WHERE rowid NOT IN (SELECT min(rowid) FROM note_tags GROUP BY note_id, tag);
INSERT INTO note_tags_new (note_id, tag)
  SELECT note_id, tag
  FROM note_tags
  WHERE rowid IN (SELECT min(rowid) FROM note_tags GROUP BY note_id, tag);
