-- Profiles: one row per auth user, created by a trigger on sign-up.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  username text,
  display_name varchar(120),
  avatar_url text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table public.profiles enable row level security;

create policy "profiles are readable by signed-in users" on public.profiles
  for select to authenticated using (true);

create policy "users update their own profile" on public.profiles
  for update to authenticated
  using ((select auth.uid()) = id)
  with check ((select auth.uid()) = id);

-- Runs as the table owner so that the insert passes RLS; the search path is pinned
-- so that a user-created function cannot shadow anything called here.
create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, display_name, avatar_url)
  values (
    new.id,
    new.raw_user_meta_data ->> 'full_name',
    new.raw_user_meta_data ->> 'avatar_url'
  );
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute procedure public.handle_new_user();

create trigger profiles_touch before update on public.profiles
  for each row execute function public.touch_updated_at();

grant select on public.profiles to authenticated;
grant update (username, display_name, avatar_url) on public.profiles to authenticated;
