-- expect: DURU105
SET lock_timeout = '5s';
SET statement_timeout = '30s';
-- duru: backup verified (pg_dump of tags and folders taken by the deploy job)
CREATE TABLE tags_new (id uuid PRIMARY KEY, name text NOT NULL);
INSERT INTO tags_new (id, name) SELECT id, name FROM tags;
DROP TABLE tags;
ALTER TABLE tags_new RENAME TO tags;
CREATE TABLE folders_new (id uuid PRIMARY KEY, name text NOT NULL);
INSERT INTO folders_new (id, name) SELECT id, name FROM folders;
DROP TABLE folders;
ALTER TABLE folders_new RENAME TO folders;
