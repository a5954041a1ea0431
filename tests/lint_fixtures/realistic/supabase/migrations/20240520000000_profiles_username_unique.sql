-- Usernames become unique (the app has checked this client-side since 2.2).
set lock_timeout = '5s';
set statement_timeout = '30s';

update public.profiles set username = lower(username) where username <> lower(username);

alter table public.profiles add constraint profiles_username_key unique (username);
