-- Expand step of avatar_url -> avatar_path: the new column, kept in step by a trigger
-- while app releases before 2.6 still write avatar_url.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.profiles add column avatar_path text;

create or replace function public.profiles_sync_avatar()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.avatar_url is distinct from old.avatar_url then
    new.avatar_path := new.avatar_url;
  elsif new.avatar_path is distinct from old.avatar_path then
    new.avatar_url := new.avatar_path;
  end if;
  return new;
end;
$$;

create trigger profiles_sync_avatar
  before insert or update on public.profiles
  for each row execute function public.profiles_sync_avatar();

grant update (avatar_path) on public.profiles to authenticated;
