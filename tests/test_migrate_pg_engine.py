"""The server engine's surface: exported names, one runner at a time, nothing to do when
current, and operations that are the device engine's kind of objects."""

from __future__ import annotations

import psycopg
import pytest

import duru.migrate.postgres as pg
from duru.errors import MigrationError
from duru.migrate.ops import Operation
from duru.migrate.postgres import (
    AddConstraint,
    DropConstraint,
    DropNotNull,
    DropPlaintext,
    SealColumn,
    SetNotNull,
    server_run,
    server_status,
)
from duru.migrate.postgres.session import RUN_LOCK
from duru.remote.schema import SERVER_SCHEMA_VERSION, apply_server_schema

# As nonsuper these run as a BYPASSRLS role: a migration refuses one that RLS binds.
pytestmark = pytest.mark.pg_migration


def test_exported_names_are_sorted_and_importable() -> None:
    assert pg.__all__ == sorted(pg.__all__)
    assert all(hasattr(pg, name) for name in pg.__all__)


def test_server_operations_are_operations_that_describe_and_reverse() -> None:
    add = AddConstraint("notes", "ck", "CHECK (version >= 0)")
    assert isinstance(add, Operation) and add.reverse() == DropConstraint(
        "notes", "ck", add.definition
    )
    assert SetNotNull("notes", "version").reverse() == DropNotNull("notes", "version")
    assert SealColumn("notes", "title").describe() == (
        "seal notes.title into title_enc (client-side encryption)"
    )
    with pytest.raises(Exception, match="not a secret text field"):
        DropPlaintext("notes", "note_type")


def test_a_current_server_is_up_to_date_and_left_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
    assert server_run(pg_url).status == "up_to_date"
    status = server_status(pg_url)
    want = str(SERVER_SCHEMA_VERSION)
    assert (status.version, status.pending, status.last_run) == (want, (), None)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('duru_migration_runs')").fetchone() == (None,)


def test_only_one_runner_at_a_time(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK,))
        with pytest.raises(MigrationError, match="another process is migrating") as err:
            server_run(pg_url)
    assert err.value.retryable
