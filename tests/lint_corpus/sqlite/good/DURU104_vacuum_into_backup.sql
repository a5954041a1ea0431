VACUUM INTO 'before-drop-note-links.db';
DROP TABLE note_links;
