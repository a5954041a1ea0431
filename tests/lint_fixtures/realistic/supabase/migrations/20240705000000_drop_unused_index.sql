-- notes_user_updated has not been scanned since notes_user_status_idx exists
-- (pg_stat_user_indexes.idx_scan = 0 for 60 days).
drop index concurrently if exists public.notes_user_updated;
