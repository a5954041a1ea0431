-- Activity log, partitioned by month so that old months can be detached and archived.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table public.activity_log (
  id bigint generated always as identity,
  user_id uuid not null,
  note_id uuid,
  action text not null,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  primary key (id, created_at)
) partition by range (created_at);

create table public.activity_log_2024_06 partition of public.activity_log
  for values from ('2024-06-01') to ('2024-07-01');
create table public.activity_log_2024_07 partition of public.activity_log
  for values from ('2024-07-01') to ('2024-08-01');
create table public.activity_log_2024_08 partition of public.activity_log
  for values from ('2024-08-01') to ('2024-09-01');

create index activity_log_user_idx on public.activity_log (user_id, created_at desc);

alter table public.activity_log enable row level security;

create policy "own activity" on public.activity_log
  for select to authenticated
  using ((select auth.uid()) = user_id);

create or replace function public.log_note_activity()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.activity_log (user_id, note_id, action)
  values (coalesce(new.user_id, old.user_id), coalesce(new.id, old.id), lower(tg_op));
  return coalesce(new, old);
end;
$$;

create trigger notes_activity
  after insert or update or delete on public.notes
  for each row execute function public.log_note_activity();
