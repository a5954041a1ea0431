"""Server migration 0011: paid plans. Every existing account starts on the free plan."""

import psycopg

STEPS = [
    "SET lock_timeout = '5s'",
    "SET statement_timeout = '30s'",
    "CREATE TYPE plan AS ENUM ('free', 'plus', 'team')",
    "ALTER TABLE accounts ADD COLUMN plan plan NOT NULL DEFAULT 'free'",
    "ALTER TABLE accounts ADD COLUMN plan_renews_at timestamptz",
    "ALTER TABLE accounts ADD COLUMN storage_quota bigint NOT NULL DEFAULT 1073741824",
    "COMMENT ON COLUMN accounts.storage_quota IS 'bytes; 1 GiB on the free plan'",
]


def up(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for step in STEPS:
            conn.execute(step)
