-- The v1 sync bookkeeping, unused since the 2.0 sync protocol.
set lock_timeout = '5s';
set statement_timeout = '30s';

drop table if exists public.legacy_sync_cursors;
