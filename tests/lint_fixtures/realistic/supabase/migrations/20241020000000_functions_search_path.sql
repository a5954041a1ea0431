-- Security advisor: functions without a fixed search_path.
begin;
set local lock_timeout = '5s';
set local statement_timeout = '30s';

alter function public.touch_updated_at() set search_path = '';
alter function public.search_notes(text) set search_path = '';

create or replace function public.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
  new.updated_at := clock_timestamp();
  return new;
end;
$fn$;
commit;
