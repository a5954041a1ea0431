SET lock_timeout = '5s';
SET statement_timeout = '30s';
CREATE TABLE tags_new (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE tags_quarantine (id uuid, name text, reason text NOT NULL);
INSERT INTO tags_quarantine (id, name, reason) SELECT id, name, 'empty name' FROM tags WHERE name = '';
INSERT INTO tags_new (id, name) SELECT id, name FROM tags WHERE name <> '';
-- duru: backup verified (pg_dump of tags taken by the deploy job)
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags;
