set lock_timeout = '5s';
set statement_timeout = '10min';

alter table public.reminders validate constraint reminders_repeat_until_check;
