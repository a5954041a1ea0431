-- Built without blocking writes. Kept alone in its file: CONCURRENTLY cannot share a
-- transaction with anything else.
create index concurrently if not exists notes_user_status_idx
  on public.notes (user_id, status);
