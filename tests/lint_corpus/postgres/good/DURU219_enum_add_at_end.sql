SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TYPE note_kind ADD VALUE IF NOT EXISTS 'task';
