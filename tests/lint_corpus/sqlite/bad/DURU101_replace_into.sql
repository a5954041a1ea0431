-- expect: DURU101
REPLACE INTO folders_archive (id, name, parent_id)
  SELECT id, name, parent_id FROM local_folders;
