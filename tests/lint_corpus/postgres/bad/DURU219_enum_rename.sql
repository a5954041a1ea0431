-- expect: DURU219
SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TYPE note_kind RENAME VALUE 'todo' TO 'task';
ALTER TYPE note_kind ADD VALUE 'idea' BEFORE 'note';
