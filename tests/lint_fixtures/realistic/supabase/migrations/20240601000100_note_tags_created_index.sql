create index concurrently if not exists note_tags_created_idx
  on public.note_tags (created_at desc)
  include (note_id, tag_id);
