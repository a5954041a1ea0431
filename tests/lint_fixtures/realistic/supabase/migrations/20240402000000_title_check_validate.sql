set lock_timeout = '5s';
set statement_timeout = '0';
alter table public.notes validate constraint notes_title_length;
