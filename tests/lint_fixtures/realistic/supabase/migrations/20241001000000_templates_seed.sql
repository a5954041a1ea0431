-- Built-in note templates. Re-running the seed updates the text of existing templates.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table if not exists public.note_templates (
  id text primary key,
  title text not null,
  body text not null,
  sort_order integer not null default 0
);

alter table public.note_templates enable row level security;

drop policy if exists "templates are public" on public.note_templates;
create policy "templates are public" on public.note_templates
  for select using (true);

insert into public.note_templates (id, title, body, sort_order)
values
  ('meeting', 'Meeting notes', E'## Attendees\n\n## Agenda\n\n## Actions\n', 10),
  ('journal', 'Journal', E'## What happened\n\n## How I feel\n', 20),
  ('todo', 'To-do list', E'- [ ] \n', 30)
on conflict (id) do update
  set title = excluded.title, body = excluded.body, sort_order = excluded.sort_order;
