-- Word counts for the statistics screen, maintained by the app on save.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.notes add column word_count integer not null default 0;
alter table public.notes add column char_count integer;

alter table public.notes
  add constraint notes_word_count_nonnegative check (word_count >= 0) not valid;
