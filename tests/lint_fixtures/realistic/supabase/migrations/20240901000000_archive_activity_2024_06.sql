-- June's activity moves to cold storage: detach the partition, keep it as a table.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.activity_log detach partition public.activity_log_2024_06;

create table public.activity_log_2024_09 partition of public.activity_log
  for values from ('2024-09-01') to ('2024-10-01');
