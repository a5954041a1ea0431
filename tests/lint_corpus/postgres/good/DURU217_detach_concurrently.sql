SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE note_events DETACH PARTITION note_events_2023 CONCURRENTLY;
