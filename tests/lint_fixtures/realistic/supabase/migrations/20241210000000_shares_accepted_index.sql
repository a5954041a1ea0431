-- The share list of a user filters on accepted shares and sorts by date.
create index concurrently if not exists note_shares_accepted_idx
  on public.note_shares (shared_with, accepted_at desc)
  where accepted_at is not null;
