-- expect: DURU002 DURU104
-- duru: allow DURU104
DROP TABLE legacy_search_cache;
