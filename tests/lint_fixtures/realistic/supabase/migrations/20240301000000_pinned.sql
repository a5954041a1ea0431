-- Pinned notes: a constant default is instant; the index is built without blocking writes.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.notes add column pinned boolean not null default false;
alter table public.notes add column meta jsonb;
