-- Step 3 of 3: PostgreSQL 12+ proves NOT NULL from the validated check, without a scan.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.profiles alter column username set not null;
alter table public.profiles drop constraint profiles_username_not_null;
