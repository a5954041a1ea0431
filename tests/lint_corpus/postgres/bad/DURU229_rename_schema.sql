-- expect: DURU229
ALTER SCHEMA app RENAME TO app_v2;
