-- Sharing a note with another user, read-only or as an editor.
set lock_timeout = '5s';
set statement_timeout = '30s';

create type public.share_role as enum ('viewer', 'editor');

create table public.note_shares (
  note_id uuid not null references public.notes (id) on delete cascade,
  shared_with uuid not null references auth.users (id) on delete cascade,
  role public.share_role not null default 'viewer',
  created_at timestamptz not null default now(),
  primary key (note_id, shared_with)
);

create index note_shares_user_idx on public.note_shares (shared_with);

alter table public.note_shares enable row level security;

create or replace function public.can_read_note(target uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.notes n
    where n.id = target and n.user_id = (select auth.uid())
  ) or exists (
    select 1 from public.note_shares s
    where s.note_id = target and s.shared_with = (select auth.uid())
  );
$$;

drop policy if exists "own notes" on public.notes;

create policy "read own or shared notes" on public.notes
  for select to authenticated
  using (public.can_read_note(id));

create policy "write own notes" on public.notes
  for all to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create policy "owners manage shares" on public.note_shares
  for all to authenticated
  using (
    exists (
      select 1 from public.notes n
      where n.id = note_shares.note_id and n.user_id = (select auth.uid())
    )
  );

create policy "see shares with me" on public.note_shares
  for select to authenticated
  using (shared_with = (select auth.uid()));
