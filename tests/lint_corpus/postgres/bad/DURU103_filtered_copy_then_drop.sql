-- expect: DURU103
SET lock_timeout = '5s';
SET statement_timeout = '30s';
CREATE TABLE tags_new (id uuid PRIMARY KEY, name text NOT NULL);
INSERT INTO tags_new (id, name) SELECT id, name FROM tags WHERE name <> '';
-- duru: backup verified (pg_dump of tags taken by the deploy job)
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags;
