-- duru: allow DURU104 because the cache is derived from local_notes and rebuilt at start-up
DROP TABLE legacy_search_cache;
