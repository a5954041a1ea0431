-- A status per note. A constant default makes ADD COLUMN instant (PostgreSQL 11+).
set lock_timeout = '5s';
set statement_timeout = '30s';

create type public.note_status as enum ('draft', 'active', 'archived');

alter table public.notes
  add column status public.note_status not null default 'active';

comment on column public.notes.status is 'draft: never synced; archived: hidden from lists';
