-- Backfill of avatar_path, in its own migration so no lock from the ALTER is held.
-- profiles is small (one row per user) and only rows still missing the path are touched.
set statement_timeout = '5min';

update public.profiles
set avatar_path = avatar_url
where avatar_path is null
  and avatar_url is not null;
