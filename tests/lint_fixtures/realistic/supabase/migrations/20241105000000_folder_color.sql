-- Folder colours were free text; the app only ever sent one of eight hex values.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.folders add column color text;
alter table public.folders alter column color set not null;
