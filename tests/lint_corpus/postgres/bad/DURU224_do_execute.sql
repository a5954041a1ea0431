-- expect: DURU224
SET lock_timeout = '5s'; SET statement_timeout = '30s';
DO $$
BEGIN
  EXECUTE format('ALTER TABLE %I ADD COLUMN archived boolean', 'notes');
END
$$;
