SET lock_timeout = '5s'; SET statement_timeout = '30s';
CREATE TABLE note_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note_id uuid NOT NULL);
