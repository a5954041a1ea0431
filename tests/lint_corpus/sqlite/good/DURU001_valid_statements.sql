CREATE TABLE note_pins (note_id TEXT PRIMARY KEY, pinned_at INTEGER NOT NULL);
CREATE INDEX note_pins_at ON note_pins (pinned_at);
CREATE TRIGGER note_pins_touch AFTER INSERT ON note_pins
BEGIN
  UPDATE note_pins SET pinned_at = unixepoch() * 1000 WHERE note_id = NEW.note_id AND pinned_at = 0;
END;
