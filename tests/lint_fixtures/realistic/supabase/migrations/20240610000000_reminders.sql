-- Reminders, and a nightly job that purges the ones done more than 30 days ago.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table public.reminders (
  id uuid primary key default gen_random_uuid(),
  note_id uuid not null,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  remind_at timestamptz not null,
  done boolean not null default false,
  created_at timestamptz not null default now()
);

create index reminders_due_idx on public.reminders (user_id, remind_at) where not done;

alter table public.reminders enable row level security;

create policy "own reminders" on public.reminders
  for all to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

create extension if not exists pg_cron;

select cron.schedule(
  'purge-done-reminders',
  '17 3 * * *',
  $$delete from public.reminders where done and remind_at < now() - interval '30 days'$$
);
