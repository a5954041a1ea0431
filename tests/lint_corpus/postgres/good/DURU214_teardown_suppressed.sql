-- duru: allow DURU214 because this is the staging teardown script, never run in production
DROP DATABASE duru_staging;
