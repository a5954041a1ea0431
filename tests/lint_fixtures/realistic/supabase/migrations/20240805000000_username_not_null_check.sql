-- Step 1 of 3 towards profiles.username NOT NULL: a check that new rows must pass.
-- NOT VALID: no scan of existing rows, so the lock is brief.
set lock_timeout = '5s';
set statement_timeout = '30s';

update public.profiles set username = 'user_' || left(id::text, 8) where username is null;

alter table public.profiles
  add constraint profiles_username_not_null check (username is not null) not valid;
