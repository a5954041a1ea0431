-- Longer display names (some identity providers send 200+ characters).
-- varchar(120) -> varchar(255) only relaxes the limit: no rewrite, no scan.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.profiles alter column display_name type varchar(255);
