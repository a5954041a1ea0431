SET lock_timeout = '5s'; SET statement_timeout = '30s';
INSERT INTO notes_archive (user_id, id, title_enc, props_enc)
  SELECT user_id, id, title_enc, props_enc FROM notes WHERE deleted_at < now() - interval '90 days';
