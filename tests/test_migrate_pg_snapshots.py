"""Server migration 0003: a server of schema 2 (the build before snapshots) gets the
snapshot tables, and then matches a database this build makes fresh.

The schema-2 database is the previous build's DDL and ``duru_meta`` rows exactly
(``history.schema_v2_ddl``); `duru serve` on it refuses to start and names the command
that upgrades it; after the migration it serves snapshots as the server role.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
from test_migrate_pg_support import fast_config
from test_sync_attacks import Server, bearer, new_device, register

from duru.migrate.postgres import (
    CreateServerTable,
    DropServerTable,
    server_plan,
    server_run,
    server_status,
)
from duru.migrate.server_migrations.history import schema_v2_ddl
from duru.remote.introspect import introspect
from duru.remote.layout import SNAPSHOTS
from duru.remote.schema import (
    NAME_SALT_KEY,
    SCHEMA_FINGERPRINT,
    apply_server_schema,
    expected_meta,
    read_meta,
)
from duru.schemacheck.check import check_schema

if TYPE_CHECKING:
    from conftest import PgDatabases

pytestmark = pytest.mark.pg_migration
PREVIOUS_BUILD_FINGERPRINT = "4c068b72bc5a72aa"  # SCHEMA_FINGERPRINT of schema 2


def _v2_server(url: str) -> None:
    """A database as `duru serve` of the build before snapshots left it."""
    with psycopg.connect(url) as conn:
        for stmt in schema_v2_ddl():
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO duru_secrets (key, value) VALUES (%s, %s)", (NAME_SALT_KEY, os.urandom(32))
        )


def _storage(url: str) -> str:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'snapshot_parts'::regclass AND attname = 'data'"
        ).fetchone()
    assert found is not None
    return str(found[0])


def test_the_operations_describe_and_reverse() -> None:
    create = CreateServerTable(SNAPSHOTS)
    assert create.reverse() == DropServerTable(SNAPSHOTS) and create.reverse().reverse() == create
    assert "snapshots" in create.describe()
    with pytest.raises(Exception, match="not a table of the server layout"):
        CreateServerTable("no_such_table")


def test_a_schema_2_server_migrated_to_3_matches_a_fresh_one(
    pg_url: str, pg_databases: PgDatabases
) -> None:
    _v2_server(pg_url)
    with psycopg.connect(pg_url) as conn:
        before = read_meta(conn) or {}
    # What the build before snapshots recorded; never this build's.
    assert before["schema_fingerprint"] == PREVIOUS_BUILD_FINGERPRINT != SCHEMA_FINGERPRINT
    assert not [stmt for stmt in schema_v2_ddl() if SNAPSHOTS in stmt]
    assert server_status(pg_url).version == "2"
    plan = server_plan(pg_url)
    assert plan.migrations == ("0003_snapshots",)
    assert any("CREATE TABLE snapshot_parts" in stmt for s in plan.steps for stmt in s.sql)
    report = server_run(pg_url, passphrases={}, config=fast_config())
    assert report.status == "done", report.reason
    assert server_status(pg_url).version == "3"
    assert check_schema(None, pg_url).ok
    with pg_databases.fresh(migration=True) as fresh:
        with psycopg.connect(fresh) as conn:
            apply_server_schema(conn)
        with psycopg.connect(pg_url) as a, psycopg.connect(fresh) as b:
            migrated, made = introspect(a), introspect(b)
            after = read_meta(a) or {}
        assert {k: after.get(k) for k in expected_meta()} == expected_meta()
        # The engine's own bookkeeping (runs, audit) is all the migrated one has beyond.
        extra = set(migrated.tables) - set(made.tables)
        assert extra and all(name.startswith("duru_migration") for name in extra), extra
        assert {name: migrated.tables[name] for name in made.tables} == made.tables
        assert migrated.functions == made.functions
        assert _storage(pg_url) == _storage(fresh) == "e"  # EXTERNAL: no compression tried


def test_duru_serve_names_the_upgrade_then_serves_snapshots_after_it(
    pg_url: str, tmp_path: Path
) -> None:
    _v2_server(pg_url)
    old = Server(pg_url, tmp_path / "home-before")
    with pytest.raises(AssertionError, match="duru migrate run --server"):
        old.start()
    assert server_run(pg_url, passphrases={}, config=fast_config()).status == "done"
    srv = Server(pg_url, tmp_path / "home-after")
    srv.start()
    try:
        creds = register(new_device(tmp_path, "ana"), srv, "ana-migrated")
        with psycopg.connect(pg_url) as conn:  # the migrator bypasses row level security
            conn.execute("UPDATE accounts SET last_change_seq = 5")
        data = os.urandom(1024 * 1024 + uuid.uuid4().int % 1000)
        r = httpx.put(
            f"{srv.url}/v1/snapshot", params={"cursor": "5"}, content=data,
            headers=bearer(creds.token), timeout=60,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        got = httpx.get(f"{srv.url}/v1/snapshot", headers=bearer(creds.token), timeout=60)
        assert got.content == data
    finally:
        srv.stop()
