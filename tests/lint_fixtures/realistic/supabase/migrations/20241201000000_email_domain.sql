-- Contact e-mail on profiles, checked by a domain shared with the invitations table.
set lock_timeout = '5s';
set statement_timeout = '30s';

create domain public.email_address as text
  check (value ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$');

alter table public.profiles add column contact_email public.email_address;
