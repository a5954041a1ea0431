-- Initial schema: notes, folders, tags, with row level security.
create extension if not exists "pgcrypto";

create table public.folders (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null,
  created_at timestamptz not null default now()
);

create table public.notes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  folder_id uuid references public.folders (id) on delete set null,
  title text not null default '',
  body text,
  updated_at timestamptz not null default now()
);

create index notes_user_updated on public.notes (user_id, updated_at desc);

alter table public.notes enable row level security;
alter table public.folders enable row level security;

create policy "own notes" on public.notes
  for all using (auth.uid() = user_id) with check (auth.uid() = user_id);
create policy "own folders" on public.folders
  for all using (auth.uid() = user_id);

create or replace function public.touch_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger notes_touch before update on public.notes
  for each row execute function public.touch_updated_at();
