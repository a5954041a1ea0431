SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE INDEX CONCURRENTLY notes_user_updated ON notes (user_id, updated_at DESC);
CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();  -- a semicolon inside the body does not end the statement
  RETURN NEW;
END;
$$;
