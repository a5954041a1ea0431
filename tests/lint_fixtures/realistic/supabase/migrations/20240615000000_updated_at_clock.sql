-- updated_at from the wall clock, not the transaction start: long sync transactions
-- stamped every row with the same time. Only the default changes; no row is rewritten.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.notes alter column updated_at set default clock_timestamp();
alter table public.folders alter column created_at set default clock_timestamp();
