"""``duru serve``: the database, the server role, then uvicorn with one or more workers.

The database is ``DURU_DATABASE_URL`` (its user is the schema owner), else an embedded
PostgreSQL under ``<home>/pg``, started here and stopped when the server stops. As the
owner, ``prepare`` applies the schema and sets up the server role; the workers connect
only as that role (or as ``DURU_SERVER_DATABASE_URL`` when given), which row level
security binds. The URL is printed once ``/v1/health`` answers. Forwarded headers are
believed only from ``--trusted-proxy`` addresses. The parent process also
purges old tombstones hourly, as the owner (``tombstones``).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import httpx
import uvicorn

from duru.errors import RemoteError, UsageError
from duru.remote import EmbeddedPostgres, RemoteConfig, connect
from duru.remote.roles import ensure_server_role, server_role_url
from duru.remote.schema import apply_server_schema

from . import http_head
from .app import APP_URL_VAR
from .config import ServerConfig
from .metrics import share_between_workers
from .tombstones import start_purger

SERVER_URL_VAR = "DURU_SERVER_DATABASE_URL"


@contextmanager
def owner_database(config: RemoteConfig) -> Iterator[str]:
    """The owner's URL: ``config.database_url``, else the embedded server (stopped after)."""
    if config.database_url:
        yield config.database_url
        return
    server = EmbeddedPostgres(config.pgdata)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def prepare(owner_url: str, config: RemoteConfig) -> str:
    """Apply the schema as the owner and return the URL the workers connect with.

    Raises RemoteError when that role is a superuser or bypasses row level security.
    """
    with connect(config, owner_url, autocommit=True) as owner:
        apply_server_schema(owner)
        given = os.environ.get(SERVER_URL_VAR, "").strip()
        if given:
            url = given
        else:
            role, password = ensure_server_role(owner)
            url = server_role_url(owner_url, role, password)
    with connect(config, url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    if found is None or found[0] or found[1]:
        raise RemoteError(
            "the sync server's database role is a superuser or bypasses row level security:"
            " give it a role that row level security binds"
        )
    return url


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    workers: int = 1,
    *,
    trusted_proxies: Sequence[str] = (),
    config: RemoteConfig | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the sync server until SIGINT or SIGTERM; ``ready(url)`` once it answers.

    ``trusted_proxies``: addresses or networks of reverse proxies whose X-Forwarded-For
    and X-Forwarded-Proto are believed. None by default: the client's address (which the
    per-address login limit counts) is the connection's, so a client cannot name a fresh
    address for each guess.
    """
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    proxies = [_proxy(p) for p in trusted_proxies]
    remote = config or RemoteConfig.from_env()
    settings = ServerConfig.from_env()
    with owner_database(remote) as owner_url:
        os.environ[APP_URL_VAR] = prepare(owner_url, remote)
        stop_purger = start_purger(
            lambda: connect(remote, owner_url, autocommit=True),
            timedelta(days=settings.tombstone_days),
        )
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        url = f"http://{_display(host)}:{bound}"
        uv = uvicorn.Config(
            "duru.server.app:app_from_env",
            factory=True,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
            # httptools, with a bound on a request's head (see ``http_head``).
            http=http_head.PROTOCOL,
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies,
        )
        if ready is not None:
            threading.Thread(target=_announce, args=(url, ready), daemon=True).start()
        unshare = share_between_workers(workers)
        # uvicorn sends SIGTERM on to the handler it found once it has shut down: make
        # that handler an exit, so the embedded PostgreSQL is stopped on the way out.
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            if workers > 1:
                from uvicorn.supervisors import Multiprocess

                Multiprocess(uv, sockets=[sock]).run()
            else:
                uvicorn.Server(uv).run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
            unshare()
            stop_purger()
            sock.close()


def _proxy(value: str) -> str:
    """A ``--trusted-proxy`` value as uvicorn takes it; UsageError if not an address or
    network."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise UsageError(
            f"--trusted-proxy {value!r} is not an IP address or network (such as 10.0.0.0/8)"
        ) from None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response written in two parts must not wait for
    # the client's delayed ACK (40 ms per request on a kept-alive connection).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(url: str, ready: Callable[[str], None]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                ready(url)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
