"""Shared test fixtures.

PostgreSQL: ``pg_server_url`` is ``DURU_DATABASE_URL`` when set, else one embedded server
started once per test session (fsync off, deleted at the end). ``pg_url`` gives each test a
fresh empty database on it, ``pg_conn`` a connection (autocommit off) to that database. Tests
using them get the ``postgres`` marker. No skipping: without a server they fail loudly.

As root the embedded server runs as another user, so its data must not live under pytest's
tmp root: every new pytest session (ours or a colleague's) resets that to mode 0700, which
makes a running server crash. ``pg_scratch`` makes folders in the system temp dir instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from duru.remote import EmbeddedPostgres, with_database

_PG_FIXTURES = {"pg_server_url", "pg_url", "pg_conn"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_scratch() -> Iterator[Callable[[str], Path]]:
    """Make a folder an embedded server may live in; all are removed after the session."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(Path(tempfile.mkdtemp(prefix=f"duru-{name}-")))
        return made[-1]

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(pg_scratch: Callable[[str], Path]) -> Iterator[str]:
    """URL of the session's PostgreSQL server (``DURU_DATABASE_URL`` or embedded)."""
    external = os.environ.get("DURU_DATABASE_URL", "").strip()
    if external:
        yield external
        return
    server = EmbeddedPostgres(pg_scratch("session") / "pg", cleanup_mode="delete", durable=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh, empty database (from template0) that is dropped after the test."""
    name = f"duru_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield with_database(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            # FORCE: a test may leave pooled or leaked connections behind.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """A connection to the test's fresh database, autocommit off; rolled back at the end."""
    conn = psycopg.connect(pg_url, autocommit=False)
    try:
        yield conn
    finally:
        conn.close()
