-- Links between notes ([[wiki links]]), written by the app when a note is saved.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table public.note_links (
  from_note uuid not null references public.notes (id) on delete cascade,
  to_note uuid not null references public.notes (id) on delete cascade,
  user_id uuid not null default auth.uid(),
  created_at timestamptz not null default now(),
  primary key (from_note, to_note),
  constraint note_links_not_self check (from_note <> to_note)
);

create index note_links_to_idx on public.note_links (to_note);

alter table public.note_links enable row level security;

create policy "links of own notes" on public.note_links
  for all to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
