-- Contract step: every supported app release (2.6+) reads and writes avatar_path.
set lock_timeout = '5s';
set statement_timeout = '30s';

create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, display_name, avatar_path)
  values (
    new.id,
    new.raw_user_meta_data ->> 'full_name',
    new.raw_user_meta_data ->> 'avatar_url'
  );
  return new;
end;
$$;

drop trigger if exists profiles_sync_avatar on public.profiles;
drop function if exists public.profiles_sync_avatar();

-- duru: allow DURU207 because no release that reads avatar_url is supported since 2.6 (April 2024)
alter table public.profiles drop column avatar_url;
