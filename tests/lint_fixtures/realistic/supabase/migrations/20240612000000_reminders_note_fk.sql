-- The foreign key reminders -> notes, added without a long lock: NOT VALID first.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.reminders
  add constraint reminders_note_fk
  foreign key (note_id) references public.notes (id) on delete cascade not valid;

alter table public.reminders validate constraint reminders_note_fk;
