SET lock_timeout = '5s'; SET statement_timeout = '30s';
TRUNCATE note_drafts, note_draft_parts;
