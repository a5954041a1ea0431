"""Safe DDL on PostgreSQL: bounded lock waits with audited retries, concurrent index builds
that clean their invalid leftovers, constraints NOT VALID then VALIDATE, NOT NULL through a
validated check, and preflight refusing to start under long transactions or lock waits."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg
import pytest
from test_migrate_pg_support import audit_rows, columns, fast_config, holding

from duru.errors import MigrationError, PreflightFailed
from duru.migrate.migration import Migration
from duru.migrate.ops import AddIndex, IndexSpec, RenameColumn
from duru.migrate.postgres import (
    AddConstraint,
    DdlPolicy,
    SafeDDL,
    ServerRunConfig,
    SetNotNull,
    preflight,
    server_plan,
    server_run,
    server_set,
)
from duru.migrate.postgres.audit import PgAudit, Where
from duru.migrate.postgres.indexes import build_index, index_validity
from duru.migrate.postgres.state import ensure_tables
from duru.remote.schema import SERVER_SCHEMA_VERSION, apply_server_schema

# As nonsuper these run as a BYPASSRLS role: a migration refuses one that RLS binds.
pytestmark = pytest.mark.pg_migration

WHERE = Where("test", "migrate", "test/ddl")


def _table(url: str, rows: int = 200) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, v bigint, parent bigint)")
        conn.execute(
            "INSERT INTO items SELECT g, g %% 7, NULL FROM generate_series(1, %s) g", (rows,)
        )


def _ddl(conn: psycopg.Connection[Any], **policy: Any) -> SafeDDL:
    with conn.transaction():
        ensure_tables(conn)
    settings = {"lock_timeout": 0.2, "attempts": 40, "backoff": 0.02, "max_backoff": 0.1, **policy}
    return SafeDDL(conn, DdlPolicy(**settings), PgAudit(conn, "test-run"))


def _reader(url: str, stop: threading.Event, waits: list[float]) -> None:
    """A client reading the table over and over, recording how long each read took."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            t0 = time.perf_counter()
            conn.execute("SELECT count(*) FROM items")
            waits.append(time.perf_counter() - t0)
            time.sleep(0.01)


def test_a_held_lock_makes_ddl_retry_instead_of_blocking_everyone(pg_url: str) -> None:
    _table(pg_url)
    waits: list[float] = []
    stop = threading.Event()
    with psycopg.connect(pg_url) as conn, holding(pg_url, "SELECT count(*) FROM items", 2.0):
        ddl = _ddl(conn)
        reader = threading.Thread(target=_reader, args=(pg_url, stop, waits))
        reader.start()
        try:
            _, attempt = ddl.run(WHERE, lambda a: conn.execute("ALTER TABLE items ADD c int"))
        finally:
            stop.set()
            reader.join()
        assert "c" in columns(conn, "items")
    assert attempt > 2  # it timed out while the lock was held, then got through
    failed = audit_rows(pg_url, step="test/ddl", status="failed")
    assert len(failed) == attempt - 1
    assert {r["details"]["sqlstate"] for r in failed} == {"55P03"}
    assert [r["details"]["attempt"] for r in failed] == list(range(1, attempt))
    # Readers queued behind each attempt for at most its lock_timeout, never the 2s hold.
    assert len(waits) > 20 and max(waits) < 1.0


def test_without_a_lock_timeout_the_same_ddl_blocks_every_reader(pg_url: str) -> None:
    """The control for the test above: the plain ALTER queues, and every read behind it."""
    _table(pg_url)
    waits: list[float] = []
    stop = threading.Event()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with holding(pg_url, "SELECT count(*) FROM items", 1.5):
            reader = threading.Thread(target=_reader, args=(pg_url, stop, waits))
            reader.start()
            time.sleep(0.1)
            conn.execute("ALTER TABLE items ADD c int")
            stop.set()
            reader.join()
    assert max(waits) > 1.0


def test_ddl_gives_up_after_its_attempts_with_a_retryable_error(pg_url: str) -> None:
    _table(pg_url)
    with psycopg.connect(pg_url) as conn, holding(pg_url, "LOCK TABLE items", 3.0):
        ddl = _ddl(conn, attempts=3)
        with pytest.raises(MigrationError, match="gave up after 3 attempts") as err:
            ddl.run(WHERE, lambda a: conn.execute("ALTER TABLE items ADD c int"))
        assert err.value.retryable
    assert len(audit_rows(pg_url, step="test/ddl", status="failed")) == 3
    with psycopg.connect(pg_url) as conn:
        assert "c" not in columns(conn, "items")


def test_backoff_doubles_is_capped_and_jittered() -> None:
    policy = DdlPolicy(backoff=0.1, max_backoff=1.0, jitter=0.5)
    ddl = SafeDDL(None, policy, rng=random.Random(7))  # type: ignore[arg-type]
    waits = [ddl.backoff(n) for n in range(1, 8)]
    bases = [min(1.0, 0.1 * 2 ** (n - 1)) for n in range(1, 8)]
    assert all(b * 0.5 <= w <= b for w, b in zip(waits, bases, strict=True))
    assert len(set(waits)) == len(waits)  # jittered, not a fixed schedule


def _leave_invalid_index(url: str) -> None:
    """A concurrent build that timed out waiting for a writer: an INVALID index stays."""
    with holding(url, "UPDATE items SET v = v WHERE id = 1", 1.0):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("CREATE INDEX CONCURRENTLY ix_items_v ON items (v)")


def test_an_invalid_leftover_index_is_dropped_and_rebuilt(pg_url: str) -> None:
    _table(pg_url)
    _leave_invalid_index(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert index_validity(conn, "ix_items_v") is False
        done = build_index(_ddl(conn), WHERE, IndexSpec("ix_items_v", "items", ("v",)))
        assert index_validity(conn, "ix_items_v") is True
    assert done.leftovers_dropped == 1 and done.attempts == 1
    dropped = [
        r for r in audit_rows(pg_url, kind="event") if "dropped_invalid_index" in r["details"]
    ]
    assert dropped[0]["details"]["dropped_invalid_index"] == "ix_items_v"


def test_a_build_that_times_out_cleans_up_and_retries_until_it_gets_through(pg_url: str) -> None:
    _table(pg_url)
    with (
        psycopg.connect(pg_url) as conn,
        holding(pg_url, "UPDATE items SET v = v WHERE id = 1", 1.5),
    ):
        done = build_index(_ddl(conn), WHERE, IndexSpec("ix_items_v", "items", ("v",)))
        assert index_validity(conn, "ix_items_v") is True
    assert done.attempts > 1 and done.leftovers_dropped >= 1
    assert {r["details"]["sqlstate"] for r in audit_rows(pg_url, status="failed")} == {"55P03"}


def test_a_failed_unique_build_leaves_no_invalid_index_behind(pg_url: str) -> None:
    _table(pg_url)
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            build_index(_ddl(conn), WHERE, IndexSpec("uq_items_v", "items", ("v",), unique=True))
        assert index_validity(conn, "uq_items_v") is None


# -- through the runner: constraints, NOT NULL, indexes --------------------------------


NEXT = str(SERVER_SCHEMA_VERSION + 1)
NEXT_ID = f"{SERVER_SCHEMA_VERSION + 1:04d}_test"


def _scratch(url: str, *ops: Any) -> Any:
    """A current server database with ``items``, and a set taking it one version on."""
    with psycopg.connect(url) as conn:
        apply_server_schema(conn)
    _table(url)
    return server_set([Migration(NEXT_ID, str(SERVER_SCHEMA_VERSION), NEXT, tuple(ops))], NEXT)


def test_a_foreign_key_is_added_not_valid_then_validated_in_its_own_step(pg_url: str) -> None:
    fk = AddConstraint("items", "fk_items_parent", "FOREIGN KEY (parent) REFERENCES items (id)")
    mset = _scratch(pg_url, fk)
    plan = server_plan(pg_url, migrations=mset)
    sql = [s.sql for s in plan.steps if "fk_items_parent" in s.key]
    assert sql == [
        (
            'ALTER TABLE "items" ADD CONSTRAINT "fk_items_parent" FOREIGN KEY (parent) REFERENCES'
            " items (id) NOT VALID",
        ),
        ('ALTER TABLE "items" VALIDATE CONSTRAINT "fk_items_parent"',),
    ]
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE items SET parent = 999999 WHERE id = 5")  # an orphan
    with pytest.raises(MigrationError, match="fk_items_parent"):
        server_run(pg_url, migrations=mset, config=fast_config())
    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_items_parent'"
        ).fetchone()
        assert found == (False,)  # in place for new rows, existing ones not yet proven
        conn.execute("UPDATE items SET parent = 1 WHERE id = 5")
    assert server_run(pg_url, migrations=mset, config=fast_config()).status == "done"
    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_items_parent'"
        ).fetchone()
        assert found == (True,)


def test_set_not_null_goes_through_a_validated_check(pg_url: str) -> None:
    mset = _scratch(pg_url, SetNotNull("items", "v"))
    plan = server_plan(pg_url, migrations=mset)
    statements = [stmt for s in plan.steps for stmt in s.sql if '"items"' in stmt]
    assert statements == [
        'ALTER TABLE "items" ADD CONSTRAINT "duru_nn_items_v" CHECK ("v" IS NOT NULL) NOT VALID',
        'ALTER TABLE "items" VALIDATE CONSTRAINT "duru_nn_items_v"',
        'ALTER TABLE "items" ALTER COLUMN "v" SET NOT NULL',
        'ALTER TABLE "items" DROP CONSTRAINT "duru_nn_items_v"',
        'ANALYZE "items"',
    ]
    assert server_run(pg_url, migrations=mset, config=fast_config()).status == "done"
    with psycopg.connect(pg_url) as conn:
        assert columns(conn, "items")["v"] is True
        left = conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'duru_nn_items_v'")
        assert left.fetchone() == (0,)


def test_an_index_step_runs_concurrently_outside_a_transaction(pg_url: str) -> None:
    mset = _scratch(pg_url, AddIndex(IndexSpec("ix_items_v", "items", ("v",))))
    _leave_invalid_index(pg_url)
    report = server_run(pg_url, migrations=mset, config=fast_config())
    assert report.status == "done"
    step = next(r for r in audit_rows(pg_url, step=f"{NEXT_ID}/00.build", kind="step"))
    assert step["details"]["invalid_leftovers_dropped"] == 1
    with psycopg.connect(pg_url) as conn:
        assert index_validity(conn, "ix_items_v") is True


def test_renames_and_type_changes_are_refused_on_the_server(pg_url: str) -> None:
    mset = _scratch(pg_url, RenameColumn("items", "v", "w"))
    with pytest.raises(Exception, match="ExpandColumn"):
        server_plan(pg_url, migrations=mset)


# -- preflight -----------------------------------------------------------------------


def test_preflight_names_a_long_transaction_with_its_pid_and_age(pg_url: str) -> None:
    _table(pg_url)
    with holding(pg_url, "SELECT count(*) FROM items", 3.0), psycopg.connect(pg_url) as conn:
        pid = None
        while pid is None:
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            ).fetchone()
            conn.rollback()
            pid = None if found is None else found[0]
        time.sleep(0.6)
        with pytest.raises(PreflightFailed) as err:
            preflight(conn, max_transaction_age=0.5)
    text = str(err.value)
    assert f"pid {pid}" in text and "transaction open" in text
    assert "SELECT count(*) FROM items" in text and "pg_terminate_backend" in text


def test_preflight_names_a_session_waiting_for_a_lock_and_its_blocker(pg_url: str) -> None:
    _table(pg_url)
    with holding(pg_url, "LOCK TABLE items", 3.0):

        def wait_for_it() -> None:
            with psycopg.connect(pg_url) as conn:
                conn.execute("SELECT count(*) FROM items")

        waiter = threading.Thread(target=wait_for_it, daemon=True)
        waiter.start()
        with psycopg.connect(pg_url) as conn:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    preflight(conn, max_transaction_age=60)
                except PreflightFailed as exc:
                    text = str(exc)
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("preflight never saw the waiting session")
        waiter.join(10)
    assert "for a lock held by pid" in text and "SELECT count(*) FROM items" in text


def test_a_run_refuses_to_start_during_a_long_transaction_and_changes_nothing(pg_url: str) -> None:
    mset = _scratch(pg_url, SetNotNull("items", "v"))
    config = ServerRunConfig(max_transaction_age=0.3)
    with holding(pg_url, "SELECT 1", 2.0):
        time.sleep(0.5)
        with pytest.raises(PreflightFailed, match="open longer than 0.3s"):
            server_run(pg_url, migrations=mset, config=config)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('duru_migration_audit')").fetchone() == (None,)


def test_preflight_refuses_a_role_that_row_level_security_applies_to(pg_url: str) -> None:
    role = f"duru_rls_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        params = psycopg.conninfo.conninfo_to_dict(pg_url)
        params["user"] = role
        with psycopg.connect(**params) as conn:  # type: ignore[arg-type]
            with pytest.raises(PreflightFailed, match="BYPASSRLS"):
                preflight(conn, max_transaction_age=60)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")
