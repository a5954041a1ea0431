-- Step 2 of 3: VALIDATE scans the table but only takes a SHARE UPDATE EXCLUSIVE lock,
-- so reads and writes go on.
set lock_timeout = '5s';
set statement_timeout = '5min';

alter table public.profiles validate constraint profiles_username_not_null;
