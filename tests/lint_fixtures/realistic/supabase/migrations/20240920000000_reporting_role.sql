-- A read-only role for the analytics service.
set lock_timeout = '5s';
set statement_timeout = '30s';

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'reporting') then
    create role reporting nologin;
  end if;
end
$$;

grant usage on schema public to reporting;

-- New tables appear every release; grant on all of them, except the ones with secrets.
do $$
declare
  t record;
begin
  for t in
    select tablename from pg_tables
    where schemaname = 'public' and tablename not in ('webhook_deliveries')
  loop
    execute format('grant select on public.%I to reporting', t.tablename);
  end loop;
end
$$;

alter default privileges in schema public grant select on tables to reporting;
