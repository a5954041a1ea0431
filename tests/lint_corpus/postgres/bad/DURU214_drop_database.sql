-- expect: DURU214
DROP DATABASE duru_staging;
