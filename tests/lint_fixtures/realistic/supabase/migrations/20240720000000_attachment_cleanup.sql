-- Attachment rows whose file is gone from storage (uploads that failed half way).
set lock_timeout = '5s';
set statement_timeout = '60s';

delete from public.attachments a
where not exists (
  select 1 from storage.objects o
  where o.bucket_id = 'attachments' and o.name = a.path
);
