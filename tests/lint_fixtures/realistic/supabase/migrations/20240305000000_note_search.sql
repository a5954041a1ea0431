-- Full-text search over notes.
create extension if not exists pg_trgm with schema extensions;

alter table public.notes
  add column search tsvector
  generated always as (
    setweight(to_tsvector('simple', coalesce(title, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(body, '')), 'B')
  ) stored;

create index notes_search_idx on public.notes using gin (search);

create or replace function public.search_notes(query text)
returns setof public.notes
language sql
stable
set search_path = ''
as $$
  select *
  from public.notes
  where user_id = (select auth.uid())
    and search @@ websearch_to_tsquery('simple', query)
  order by ts_rank(search, websearch_to_tsquery('simple', query)) desc
  limit 50;
$$;

grant execute on function public.search_notes(text) to authenticated;
