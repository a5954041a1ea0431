-- Repeating reminders.
set lock_timeout = '5s';
set statement_timeout = '30s';

create type public.repeat_rule as enum ('none', 'daily', 'weekly', 'monthly', 'yearly');

alter table public.reminders add column repeat public.repeat_rule not null default 'none';
alter table public.reminders add column repeat_until date;

alter table public.reminders
  add constraint reminders_repeat_until_check
  check (repeat_until is null or repeat <> 'none') not valid;
