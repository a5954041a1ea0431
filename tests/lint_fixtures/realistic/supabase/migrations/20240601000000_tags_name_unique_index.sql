-- One tag name per user, case-insensitively. Built concurrently, without blocking writes;
-- an expression index cannot back a constraint, so the index itself enforces it.
create unique index concurrently if not exists tags_user_name_key
  on public.tags (user_id, lower(name));
