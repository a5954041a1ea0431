SET lock_timeout = '5s';
INSERT INTO notes_archive (user_id, id, title_enc, props_enc)
  SELECT user_id, id, title_enc, props_enc FROM notes WHERE deleted_at < now() - interval '90 days';
