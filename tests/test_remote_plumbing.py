"""duru.remote plumbing: config, the embedded server's life cycle, the pool, the fixtures."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import platformdirs
import psutil
import psycopg
import pytest

import duru.remote
from duru.errors import ServerUnavailable, UsageError
from duru.remote import (
    EmbeddedPostgres,
    RemoteConfig,
    RemoteServer,
    connect,
    describe_url,
    open_pool,
    pooled_connection,
    redact,
    server_url,
    with_database,
)

SECRET = "s3cr3t-Pa55"
PG15_BIN = Path("/usr/lib/postgresql/15/bin")


# --- config ---------------------------------------------------------------------------------


def test_exported_names_are_sorted_and_importable() -> None:
    assert duru.remote.__all__ == sorted(duru.remote.__all__)
    for name in duru.remote.__all__:
        assert getattr(duru.remote, name) is not None


def test_config_reads_env_and_overrides_win(tmp_path: Path) -> None:
    env = {
        "DURU_DATABASE_URL": "postgresql://u@db.example:6543/notes",
        "DURU_HOME": str(tmp_path),
        "DURU_POOL_MIN_SIZE": "2",
        "DURU_POOL_MAX_SIZE": "7",
        "DURU_STATEMENT_TIMEOUT": "12.5",
        "DURU_LOCK_TIMEOUT": "0.25",
    }
    config = RemoteConfig.from_env(env, pool_max_size=9)
    assert config.database_url == "postgresql://u@db.example:6543/notes"
    assert config.home == tmp_path and config.pgdata == tmp_path / "pg"
    assert (config.pool_min_size, config.pool_max_size) == (2, 9)
    assert config.session_settings() == {
        "statement_timeout": "12500",
        "lock_timeout": "250",
        "idle_in_transaction_session_timeout": "60000",
        "application_name": "duru",
        "TimeZone": "UTC",
    }


def test_config_defaults_to_embedded_in_the_user_data_folder() -> None:
    config = RemoteConfig.from_env({})
    assert config.database_url is None
    assert config.home == platformdirs.user_data_path("duru", appauthor=False)


@pytest.mark.parametrize(
    ("env", "overrides", "needle"),
    [
        ({"DURU_POOL_MAX_SIZE": "many"}, {}, "DURU_POOL_MAX_SIZE"),
        ({}, {"pool_min_size": 5, "pool_max_size": 2}, "min=5, max=2"),
        ({}, {"connect_timeout": 0}, "connect_timeout"),
        ({}, {"lock_timeout": -1}, "lock_timeout"),
        ({}, {"pool_size": 3}, "pool_size"),
        ({"DURU_DATABASE_URL": f"host=x password={SECRET} nonsense"}, {}, "not a valid"),
    ],
)
def test_config_rejects_bad_values_clearly(
    env: dict[str, str], overrides: dict[str, object], needle: str
) -> None:
    with pytest.raises(UsageError) as info:
        RemoteConfig.from_env(env, **overrides)
    assert needle in str(info.value)
    assert SECRET not in str(info.value)


def test_urls_are_described_and_redacted_without_passwords() -> None:
    url = f"postgresql://alice:{SECRET}@db.example:6543/notes?sslmode=require"
    assert describe_url(url) == "alice@db.example:6543/notes"
    assert SECRET not in redact(f"failed for {url}")
    assert SECRET not in redact(f"host=db password={SECRET} dbname=notes")
    assert SECRET not in redact(f"host=db password='{SECRET} x' dbname=notes")
    assert with_database(url, "other") == (
        f"postgresql://alice:{SECRET}@db.example:6543/other?sslmode=require"
    )
    assert with_database("postgresql://u:@/duru?host=/tmp/s", "t1") == (
        "postgresql://u:@/t1?host=/tmp/s"
    )
    assert "dbname=t2" in with_database("host=/tmp/s dbname=duru", "t2")


# --- embedded server life cycle ---------------------------------------------------------------


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(pid: int | None, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _select_one(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def cluster(pg_scratch: Callable[[str], Path]) -> Iterator[Path]:
    """An initialized, stopped embedded cluster shared by the life-cycle tests."""
    pgdata = pg_scratch("cluster") / "pg"
    with EmbeddedPostgres(pgdata, durable=False):
        pass
    yield pgdata
    assert not _alive(_postmaster_pid(pgdata)), "a life-cycle test left the server running"
    shutil.rmtree(pgdata, ignore_errors=True)


def test_embedded_server_answers_with_version_18(cluster: Path) -> None:
    with EmbeddedPostgres(cluster, durable=False) as pg, psycopg.connect(pg.url) as conn:
        version, num, db = conn.execute(
            "SELECT version(), current_setting('server_version_num')::int, current_database()"
        ).fetchone() or ("", 0, "")
    print(f"embedded server: {version}")
    assert version.startswith("PostgreSQL 18.")
    assert num >= 180000
    assert db == "duru"


def test_embedded_duru_database_has_monitoring_extensions(cluster: Path) -> None:
    with EmbeddedPostgres(cluster, durable=False) as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        installed = {r[0] for r in conn.execute("SELECT extname FROM pg_extension").fetchall()}
        assert {"pg_stat_statements", "pgstattuple"} <= installed
        conn.execute("SELECT 424242 AS marker_for_pgss").fetchone()
        calls = conn.execute(
            "SELECT sum(calls) FROM pg_stat_statements WHERE query LIKE '%marker_for_pgss%'"
        ).fetchone()
        assert calls is not None and calls[0] >= 1
        tuples = conn.execute("SELECT tuple_count FROM pgstattuple('pg_class')").fetchone()
        assert tuples is not None and tuples[0] > 0


def test_start_stop_twice_in_one_process_really_stops(cluster: Path) -> None:
    for _ in range(2):
        pg = EmbeddedPostgres(cluster, durable=False)
        assert _select_one(pg.start()) == 1
        pid = _postmaster_pid(cluster)
        assert _alive(pid)
        pg.stop()
        pg.stop()  # idempotent
        assert _wait_dead(pid), "stop() left the postmaster running"
        assert not (cluster / "postmaster.pid").exists()


def test_last_handle_in_process_stops_the_server(cluster: Path) -> None:
    first, second = EmbeddedPostgres(cluster), EmbeddedPostgres(cluster)
    first.start()
    url = second.start()
    pid = _postmaster_pid(cluster)
    first.stop()
    assert _select_one(url) == 1, "the first stop must not pull the server from the second"
    second.stop()
    assert _wait_dead(pid)


_HOLD_UNTIL_TOLD = """
import sys
from pathlib import Path
from duru.remote import EmbeddedPostgres
pg = EmbeddedPostgres(Path(sys.argv[1]), durable=False)
pg.start()
print("ready", flush=True)
sys.stdin.readline()
pg.stop()
"""


def test_restart_while_another_process_holds_the_server(cluster: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_UNTIL_TOLD, str(cluster)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as other:
        assert other.stdin is not None and other.stdout is not None
        try:
            assert other.stdout.readline().strip() == "ready"
            pid = _postmaster_pid(cluster)
            mine = EmbeddedPostgres(cluster, durable=False)
            mine.start()
            mine.stop()
            assert _alive(pid), "the other process still holds the server"
            url = mine.start()  # must count as a holder again, not reuse a released handle
            other.stdin.write("\n")
            other.stdin.flush()
            assert other.wait(timeout=30) == 0
            assert _select_one(url) == 1, "the other process's stop took the server from us"
            mine.stop()
            assert _wait_dead(pid)
        finally:
            if other.poll() is None:
                other.kill()


_START_AND_DIE = """
import os, signal, sys
from pathlib import Path
from duru.remote import EmbeddedPostgres
pgdata = Path(sys.argv[1])
EmbeddedPostgres(pgdata, durable=False).start()
if sys.argv[2] == "postmaster":
    os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _start_and_die(pgdata: Path, also_kill: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _START_AND_DIE, str(pgdata), also_kill],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_server_left_by_a_killed_process_is_reused_then_stopped(cluster: Path) -> None:
    _start_and_die(cluster, also_kill="nothing")
    orphan = _postmaster_pid(cluster)
    assert _alive(orphan), "the killed process's server should still be running"
    pg = EmbeddedPostgres(cluster, durable=False)
    assert _select_one(pg.start()) == 1
    assert _postmaster_pid(cluster) == orphan
    pg.stop()
    # The dead process's pid stays on the wheel's handle list unless we prune it.
    assert _wait_dead(orphan), "stop() did not stop a server whose first owner was killed"


def test_server_recovers_after_its_postmaster_was_killed(cluster: Path) -> None:
    _start_and_die(cluster, also_kill="postmaster")
    killed = _postmaster_pid(cluster)
    assert killed is not None and _wait_dead(killed)
    pg = EmbeddedPostgres(cluster, durable=False)
    assert _select_one(pg.start()) == 1
    assert _postmaster_pid(cluster) != killed
    pg.stop()
    assert not (cluster / "postmaster.pid").exists()


def test_start_failure_raises_server_unavailable_with_log_tail(cluster: Path) -> None:
    conf = cluster / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nshared_buffers = 'plenty'\n")
    try:
        with pytest.raises(ServerUnavailable) as info:
            EmbeddedPostgres(cluster, durable=False).start()
        message = str(info.value)
        assert "did not start" in message and str(cluster) in message
        assert 'invalid value for parameter "shared_buffers"' in message
        assert info.value.retryable
    finally:
        conf.write_text(original)
    with EmbeddedPostgres(cluster, durable=False) as pg:  # the failed start left nothing stuck
        assert _select_one(pg.url) == 1


def test_delete_mode_removes_the_data_folder(pg_scratch: Callable[[str], Path]) -> None:
    pgdata = pg_scratch("delete") / "pg"
    with EmbeddedPostgres(pgdata, cleanup_mode="delete", durable=False) as pg:
        assert _select_one(pg.url) == 1
        assert (pgdata / "PG_VERSION").exists()
    assert not pgdata.exists()


def test_remote_server_prefers_database_url_and_else_embeds(
    cluster: Path, pg_server_url: str
) -> None:
    external = RemoteConfig(database_url=pg_server_url, home=cluster.parent / "unused")
    assert server_url(external) == pg_server_url
    assert not (cluster.parent / "unused").exists()
    with RemoteServer(RemoteConfig(home=cluster.parent)) as url:
        assert url.startswith("postgresql://") and "/duru?" in url
        assert _select_one(url) == 1
    assert not _alive(_postmaster_pid(cluster))


# --- pool -------------------------------------------------------------------------------------


def _show(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def test_pool_configures_every_connection(pg_url: str) -> None:
    config = RemoteConfig(
        database_url=pg_url,
        pool_min_size=2,
        pool_max_size=2,
        statement_timeout=0.2,
        lock_timeout=0.25,
        idle_in_transaction_timeout=2,
    )
    with open_pool(config) as pool:
        with pooled_connection(pool) as a, pooled_connection(pool) as b:
            for conn in (a, b):
                assert _show(conn, "statement_timeout") == "200ms"
                assert _show(conn, "lock_timeout") == "250ms"
                assert _show(conn, "idle_in_transaction_session_timeout") == "2s"
                assert _show(conn, "application_name") == "duru"
        with pytest.raises(psycopg.errors.QueryCanceled), pooled_connection(pool) as conn:
            conn.execute("SELECT pg_sleep(2)")


def test_pool_close_releases_its_connections(pg_url: str) -> None:
    config = RemoteConfig(database_url=pg_url, pool_min_size=3, pool_max_size=3)
    count = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'duru'"
    )
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        pool = open_pool(config)
        assert watcher.execute(count).fetchone() == (3,)
        pool.close()
        deadline = time.monotonic() + 5
        while watcher.execute(count).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.execute(count).fetchone() == (0,)


def _backend_pid(pool: duru.remote.Pool) -> int:
    with pooled_connection(pool) as conn:
        return int(conn.info.backend_pid)


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_health_check_replaces_a_killed_connection(pg_url: str) -> None:
    config = RemoteConfig(database_url=pg_url, pool_min_size=1, pool_max_size=1)
    with open_pool(config) as pool:
        killed = _backend_pid(pool)
        _terminate(pg_url, killed)
        with pooled_connection(pool) as conn:
            assert conn.execute("SELECT 7").fetchone() == (7,)
            assert conn.info.backend_pid != killed


def test_without_health_check_the_killed_connection_is_handed_out(pg_url: str) -> None:
    # The control for the test above: it proves the check is what saves the caller.
    config = RemoteConfig(
        database_url=pg_url, pool_min_size=1, pool_max_size=1, check_on_checkout=False
    )
    with open_pool(config) as pool:
        _terminate(pg_url, _backend_pid(pool))
        with pytest.raises(psycopg.OperationalError), pooled_connection(pool) as conn:
            conn.execute("SELECT 7")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://alice:{SECRET}@127.0.0.1:1/notes",
        f"host=127.0.0.1 port=1 user=alice password={SECRET} dbname=notes",
    ],
)
def test_unreachable_server_gives_clear_password_free_error(url: str) -> None:
    config = RemoteConfig(database_url=url, connect_timeout=2)
    for attempt in (lambda: open_pool(config), lambda: connect(config)):
        with pytest.raises(ServerUnavailable) as info:
            attempt()
        message = str(info.value)
        assert message.startswith("cannot connect to PostgreSQL at alice@127.0.0.1:1/notes: ")
        assert "refused" in message.lower()
        assert SECRET not in message and "\n" not in message
        assert info.value.retryable


def test_missing_database_gives_server_unavailable(pg_server_url: str) -> None:
    url = with_database(pg_server_url, "duru_no_such_db")
    with pytest.raises(ServerUnavailable, match='database "duru_no_such_db" does not exist'):
        open_pool(RemoteConfig(database_url=url))


def test_exhausted_pool_gives_server_unavailable(pg_url: str) -> None:
    config = RemoteConfig(database_url=pg_url, pool_min_size=1, pool_max_size=1)
    with open_pool(config) as pool, pooled_connection(pool):
        with pytest.raises(ServerUnavailable, match="pool exhausted: 1 open, max 1"):
            with pooled_connection(pool, timeout=0.2):
                pass


def test_connect_gives_one_configured_connection(pg_url: str) -> None:
    config = RemoteConfig(database_url=pg_url, lock_timeout=1.5)
    with connect(config, autocommit=True) as conn:
        assert _show(conn, "lock_timeout") == "1500ms"
        assert conn.autocommit


# --- fixtures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_fresh_empty_database(
    pg_conn: psycopg.Connection[tuple[object, ...]], pg_server_url: str, round_: int
) -> None:
    db = pg_conn.execute("SELECT current_database()").fetchone()
    assert db is not None and str(db[0]).startswith("duru_test_")
    assert str(db[0]) != psycopg.conninfo.conninfo_to_dict(pg_server_url).get("dbname")
    user_relations = pg_conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    ).fetchone()
    assert user_relations == (0,)
    extensions = pg_conn.execute("SELECT array_agg(extname) FROM pg_extension").fetchone()
    assert extensions == (["plpgsql"],)
    assert not pg_conn.autocommit
    # Left behind on purpose: the other round must not see it.
    pg_conn.execute("CREATE TABLE leftover (id int)")
    pg_conn.commit()


def test_pg_stat_statements_can_be_enabled_in_a_test_database(
    pg_conn: psycopg.Connection[tuple[object, ...]], pg_inspect_url: str
) -> None:
    # As the DBA would: the extension is not trusted, so only a superuser may create it.
    with psycopg.connect(pg_inspect_url, autocommit=True) as dba:
        dba.execute("CREATE EXTENSION pg_stat_statements")
    pg_conn.execute("SELECT 31337 AS fixture_marker").fetchone()
    row = pg_conn.execute(
        "SELECT calls FROM pg_stat_statements WHERE query LIKE '%fixture_marker%'"
    ).fetchone()
    assert row is not None and row[0] >= 1


# --- a system PostgreSQL 15 -------------------------------------------------------------------


def _as_postgres_user(args: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else args


@pytest.mark.skipif(
    not (PG15_BIN / "initdb").exists(),
    reason=f"Debian PostgreSQL 15 is not installed ({PG15_BIN}/initdb missing)",
)
def test_pool_smoke_on_debian_postgresql_15() -> None:
    user = None
    if os.geteuid() == 0:  # initdb refuses root
        user = "embedded_postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/bash", user], check=True)
    root = Path(tempfile.mkdtemp(prefix="duru-pg15-", dir="/tmp"))
    data = root / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run(
            _as_postgres_user([str(PG15_BIN / args[0]), *args[1:]], user),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-k {root} -h '' -c fsync=off"
        run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start")
        url = f"postgresql://postgres@/postgres?host={root}"
        config = RemoteConfig(database_url=url, pool_min_size=1, pool_max_size=2)
        with open_pool(config) as pool, pooled_connection(pool) as conn:
            version = _show(conn, "server_version")
            assert version.startswith("15."), version
            assert _show(conn, "statement_timeout") == "30s"
            assert _show(conn, "lock_timeout") == "5s"
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
