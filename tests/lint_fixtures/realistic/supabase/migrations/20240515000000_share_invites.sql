-- Invitations by link: each share gets a token the invitee redeems.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.note_shares
  add column invite_token uuid not null default gen_random_uuid();

alter table public.note_shares
  add column accepted_at timestamptz;
