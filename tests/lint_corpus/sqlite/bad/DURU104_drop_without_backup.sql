-- expect: DURU104
DROP TABLE note_links;
