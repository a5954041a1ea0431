-- Deleting a folder sets folder_id to null in its notes; without an index on folder_id
-- every folder delete scans all notes.
create index concurrently if not exists notes_folder_idx on public.notes (folder_id);
