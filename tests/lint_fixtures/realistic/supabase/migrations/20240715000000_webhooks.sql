-- Outgoing webhooks: the payload is stored exactly as it was signed and sent.
set lock_timeout = '5s';
set statement_timeout = '30s';

create table public.webhook_deliveries (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  url text not null,
  -- duru: allow DURU227 because the payload must stay byte for byte as it was signed
  payload json not null,
  signature text not null,
  status smallint,
  attempts integer not null default 0,
  created_at timestamptz not null default now()
);

create index webhook_deliveries_pending_idx
  on public.webhook_deliveries (created_at)
  where status is null;

alter table public.webhook_deliveries enable row level security;

revoke all on public.webhook_deliveries from anon, authenticated;
grant select on public.webhook_deliveries to service_role;
