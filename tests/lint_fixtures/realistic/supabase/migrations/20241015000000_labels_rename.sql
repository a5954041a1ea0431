-- "Tags" are called "labels" everywhere in the app now. The table is renamed, and a
-- view under the old name keeps releases before 3.0 working (a simple view is updatable).
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.tags rename to labels;

create view public.tags
with (security_invoker = true)
as select id, user_id, name, color, created_at from public.labels;

grant select, insert, update, delete on public.tags to authenticated;
grant select, insert, update, delete on public.labels to authenticated;
