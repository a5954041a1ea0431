-- Manual ordering of folders.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.folders add column position integer;

update public.folders f
set position = ranked.rn
from (
  select id, row_number() over (partition by user_id order by created_at) as rn
  from public.folders
) as ranked
where ranked.id = f.id;

alter table public.folders alter column position set default 0;
