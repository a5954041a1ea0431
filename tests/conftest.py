"""Shared test fixtures.

PostgreSQL: the server is ``DURU_DATABASE_URL`` when set, else one embedded server started
once per test session (fsync off, deleted at the end). ``pg_url`` gives each test a fresh
empty database on it, ``pg_conn`` a connection (autocommit off) to that database,
``pg_databases`` more databases when a test or module needs its own. Tests using any of
them get the ``postgres`` marker. No skipping: without a server they fail loudly.

Every PostgreSQL test runs twice, once per role (``pg_role``, a parameter of the session
fixtures, so test ids end in ``[superuser]`` or ``[nonsuper]``):

- ``superuser``: the server's own superuser, as on the embedded server duru starts itself;
- ``nonsuper``: roles made for the session, as an operator sets duru up on a managed
  PostgreSQL. The ``operator`` role (``NOSUPERUSER NOBYPASSRLS NOCREATEDB CREATEROLE``) owns
  each test database, so row level security binds it on every per-user table (FORCE).
  CREATEROLE because the schema owner creates the sync server's own role
  (``duru.remote.roles``); no CREATEDB: the operator's DBA (here conftest, as superuser)
  makes the database. Tests marked ``pg_migration`` run a server migration, which must see
  every user's rows and refuses a role that row level security binds
  (``duru.migrate.postgres.preflight``): their database is owned by the ``migrator`` role,
  the same but ``BYPASSRLS``, still no superuser.

Both modes run in the plain ``pytest`` (the README's command, which CI runs), so a
developer sees what CI sees. Why the whole PostgreSQL part and not a subset: row level
security changes what every query of the owner sees, so any test may be the one that
breaks. It costs one more PostgreSQL part: 7 to 9 minutes per mode measured on two cores
shared with other test runs (load 6), about 5 alone; well inside CI's 90 minutes. pytest
groups the tests by the session parameter, so each mode's roles are made once.
``DURU_TEST_PG_ROLE=superuser`` or ``=nonsuper`` runs one mode only (a quick local run).

A test of a path only a superuser takes is marked ``pg_superuser_only(reason)``: as
nonsuper it is skipped, and the summary (``-ra``) prints the reason. A test that fails as
nonsuper because of a known product bug is marked ``pg_nonsuper_fails(reason)`` (a strict
xfail). Both markers can also come from the lists below, for files outside this change.

``pg_admin_url`` is the superuser in both modes, and ``pg_inspect_url`` the test's database
as the superuser. Only conftest and checks that look past row level security on purpose
(counting every user's rows the server stored, reading data files, installing an extension
as a DBA would) use them, and say so; the code under test acts as ``pg_server_url``'s role.
Where a test reads one user's rows it sets that user as the product does (``set_user``).

As root the embedded server runs as another user, so its data must not live under pytest's
tmp root: every new pytest session (ours or a colleague's) resets that to mode 0700, which
makes a running server crash. ``pg_scratch`` makes folders in the system temp dir instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from duru.remote import EmbeddedPostgres, with_database
from duru.remote.config import with_role

SUPERUSER, NONSUPER = "superuser", "nonsuper"
_PG_FIXTURES = {
    "pg_admin_url",
    "pg_server_url",
    "pg_url",
    "pg_conn",
    "pg_databases",
    "pg_inspect_url",
    "pg_role",
}
# What each nonsuper role may do besides LOGIN (see the module docstring for why).
_OPERATOR = "NOSUPERUSER NOBYPASSRLS NOCREATEDB CREATEROLE"
_MIGRATOR = "NOSUPERUSER BYPASSRLS NOCREATEDB CREATEROLE"


# Tests in files outside the change that made the nonsuper mode (issue 11, item 3), listed
# here until their owners mark or fix them. The xfail is strict: once fixed, a test fails
# until it leaves the list.
_SUPERUSER_ONLY = {
    "tests/test_staged_first_write.py::"
    "test_a_superuser_copies_straight_in_then_upserts_once_rows_exist": (
        "COPY straight into the table is the superuser's path; a role bound by row level"
        " security takes INSERT (test_under_row_level_security_it_inserts...)"
    ),
}
_NONSUPER_FAILS: dict[str, str] = {}


def _pg_roles() -> list[str]:
    """The modes ``DURU_TEST_PG_ROLE`` asks for (``pytest_configure`` refuses other values)."""
    chosen = os.environ.get("DURU_TEST_PG_ROLE", "").strip()
    return [chosen] if chosen in (SUPERUSER, NONSUPER) else [SUPERUSER, NONSUPER]


def pytest_configure(config: pytest.Config) -> None:
    chosen = os.environ.get("DURU_TEST_PG_ROLE", "").strip()
    if chosen not in ("", SUPERUSER, NONSUPER):
        raise pytest.UsageError(
            f"DURU_TEST_PG_ROLE={chosen!r}: use {SUPERUSER!r} or {NONSUPER!r} (unset: both)"
        )
    config.addinivalue_line(
        "markers",
        "pg_migration: runs a server migration; as nonsuper its database belongs to a"
        " BYPASSRLS role (a migration refuses one that row level security binds)",
    )
    config.addinivalue_line(
        "markers",
        "pg_superuser_only(reason): tests a path only a superuser takes; skipped as nonsuper,"
        " with the reason shown",
    )
    config.addinivalue_line(
        "markers",
        "pg_nonsuper_fails(reason): a known failure as nonsuper (a product bug, named in the"
        " reason); strict xfail, so the fix shows",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        callspec = getattr(item, "callspec", None)
        if not callspec or callspec.params.get("pg_role") != NONSUPER:
            continue
        only = item.get_closest_marker("pg_superuser_only")
        reason = only.args[0] if only else _SUPERUSER_ONLY.get(item.nodeid.split("[")[0])
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"superuser only: {reason}"))
        known = item.get_closest_marker("pg_nonsuper_fails")
        reason = known.args[0] if known else _NONSUPER_FAILS.get(item.nodeid.split("[")[0])
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"fails as nonsuper: {reason}"))


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
def pg_admin_url(pg_scratch: Callable[[str], Path]) -> Iterator[str]:
    """Superuser URL of the session's server (``DURU_DATABASE_URL`` or embedded).

    Privileged: for conftest and for checks that look past row level security on purpose.
    Tests act through ``pg_server_url``.
    """
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


@pytest.fixture(scope="session", params=_pg_roles())
def pg_role(request: pytest.FixtureRequest) -> str:
    """Which role the PostgreSQL tests act as: ``superuser`` or ``nonsuper``."""
    return str(request.param)


@dataclass(frozen=True)
class PgRoles:
    """URLs (on the server's own database) the tests act as, per kind of work."""

    operator: str
    migrator: str


@pytest.fixture(scope="session")
def pg_roles(pg_admin_url: str, pg_role: str) -> Iterator[PgRoles]:
    """The roles of this mode: the superuser for both, or two roles made for the session."""
    if pg_role == SUPERUSER:
        yield PgRoles(pg_admin_url, pg_admin_url)
        return
    # Role names are cluster-wide and DURU_DATABASE_URL may be shared by several sessions.
    tag = uuid.uuid4().hex[:8]
    made: list[str] = []
    try:
        urls = []
        for kind, attributes in (("operator", _OPERATOR), ("migrator", _MIGRATOR)):
            role, password = f"duru_test_{kind}_{tag}", secrets.token_urlsafe(24)
            with psycopg.connect(pg_admin_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                        sql.Identifier(role), sql.SQL(attributes), sql.Literal(password)
                    )
                )
                made.append(role)
                # PostgreSQL 16+: a role it creates it may administer, not act as; tests act
                # as the roles they make (SET ROLE), as the operator who made them may.
                admin.execute(
                    sql.SQL("ALTER ROLE {} SET createrole_self_grant = 'set'").format(
                        sql.Identifier(role)
                    )
                )
            urls.append(with_role(pg_admin_url, role, password))
        yield PgRoles(*urls)
    finally:
        for role in made:
            _drop_role_and_its_roles(pg_admin_url, role)


def _drop_role_and_its_roles(admin_url: str, role: str) -> None:
    """Drop ``role`` and the roles it created (the sync server roles of its databases)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        made = [
            str(r[0])
            for r in admin.execute(
                "SELECT m.rolname FROM pg_auth_members a"
                " JOIN pg_roles m ON m.oid = a.roleid JOIN pg_roles g ON g.oid = a.member"
                " WHERE g.rolname = %s AND a.admin_option",
                (role,),
            )
        ]
        for name in [*made, role]:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_server_url(pg_roles: PgRoles) -> str:
    """URL of the server, on its own database, as the role under test (``operator``)."""
    return pg_roles.operator


class PgDatabases:
    """Fresh databases owned by a role under test, made and dropped by the superuser."""

    def __init__(self, admin_url: str, roles: PgRoles) -> None:
        self.admin_url = admin_url
        self.roles = roles

    def create(self, prefix: str = "duru_test", *, migration: bool = False) -> str:
        """A new empty database (from template0); its URL as the owner.

        The owner is the ``operator`` role, or with ``migration`` the ``migrator``.
        """
        url = self.roles.migrator if migration else self.roles.operator
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
        if url != self.admin_url:
            owner = str(conninfo_to_dict(url)["user"])
            query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(query)
        return with_database(url, name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url``, closing what a test left connected to it."""
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(_dbname(url))
                )
            )

    def inspect(self, url: str) -> str:
        """``url``'s database as the superuser: to look past row level security on purpose."""
        return with_database(self.admin_url, _dbname(url))

    @contextmanager
    def fresh(self, prefix: str = "duru_test", *, migration: bool = False) -> Iterator[str]:
        """A new database for the ``with`` block, dropped after it."""
        url = self.create(prefix, migration=migration)
        try:
            yield url
        finally:
            self.drop(url)


def _dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url: str, pg_roles: PgRoles) -> PgDatabases:
    """Make databases owned by the roles under test (see ``PgDatabases``)."""
    return PgDatabases(pg_admin_url, pg_roles)


@pytest.fixture
def pg_url(pg_databases: PgDatabases, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, empty database (from template0) that is dropped after the test.

    Owned by the ``operator`` role, or the ``migrator`` in a test marked ``pg_migration``.
    """
    migration = request.node.get_closest_marker("pg_migration") is not None
    # drop() uses FORCE: a test may leave pooled or leaked connections behind.
    with pg_databases.fresh(migration=migration) as url:
        yield url


@pytest.fixture
def pg_inspect_url(pg_url: str, pg_databases: PgDatabases) -> str:
    """``pg_url``'s database as the superuser, for checks past row level security.

    Privileged on purpose: for counting what the server stored for every user, or for a
    DBA's step (an extension). The code under test never gets it.
    """
    return pg_databases.inspect(pg_url)


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """A connection to the test's fresh database, autocommit off; rolled back at the end."""
    conn = psycopg.connect(pg_url, autocommit=False)
    try:
        yield conn
    finally:
        conn.close()
