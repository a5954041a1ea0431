set lock_timeout = '5s';
set statement_timeout = '30s';
alter table public.notes
  add constraint notes_title_length check (char_length(title) <= 500) not valid;
