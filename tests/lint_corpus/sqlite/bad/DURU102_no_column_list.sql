-- expect: DURU102
INSERT INTO templates_copy SELECT id, title, body FROM local_templates;
