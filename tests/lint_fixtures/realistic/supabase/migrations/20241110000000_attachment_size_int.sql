-- size_bytes was bigint; the upload limit is 50 MB, so integer is plenty.
set lock_timeout = '5s';
set statement_timeout = '30s';

alter table public.attachments alter column size_bytes type integer;
