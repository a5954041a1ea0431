-- expect: DURU001
CREATE TABLE note_pins (note_id TEXT PRIMARY KEY, pinned_at INTEGER NOT NULL);
CREAT INDEX note_pins_at ON note_pins (pinned_at);
