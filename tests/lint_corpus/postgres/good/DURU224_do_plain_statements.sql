SET lock_timeout = '5s'; SET statement_timeout = '30s';
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'note_kind') THEN
    CREATE TYPE note_kind AS ENUM ('note', 'task');
  END IF;
END
$$;
