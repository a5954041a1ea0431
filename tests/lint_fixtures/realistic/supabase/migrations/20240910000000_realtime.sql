-- Realtime for notes and shares; full row images so that deletes carry user_id.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.notes replica identity full;
alter table public.note_shares replica identity full;

alter publication supabase_realtime add table public.notes, public.note_shares;

comment on table public.notes is 'User notes; body is end-to-end encrypted by the app.';
