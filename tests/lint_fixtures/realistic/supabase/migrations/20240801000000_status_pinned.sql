-- A "pinned" status that sorts before "archived".
set lock_timeout = '5s';
set statement_timeout = '30s';

alter type public.note_status add value if not exists 'pinned' before 'archived';
