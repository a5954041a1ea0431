"""Server migration 0012: contract step of the folders.path expand/contract."""

import psycopg


def up(cur: psycopg.Cursor) -> None:
    cur.execute("SET lock_timeout = '5s'; SET statement_timeout = '30s'")
    # duru: allow DURU207 because every client since release 5.2 reads parent_id, not legacy_path
    cur.execute("ALTER TABLE folders DROP COLUMN legacy_path")
