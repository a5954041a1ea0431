"""Connections to the server store: one configured connection, or a health-checked pool.

Every connection duru opens runs with the config's ``statement_timeout``, ``lock_timeout``,
``idle_in_transaction_session_timeout`` and ``application_name``. Failing to reach the server
raises ``ServerUnavailable`` (retryable) with a one-line, password-free message.

    with open_pool(config) as pool, pooled_connection(pool) as conn:
        conn.execute(...)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from duru.errors import ServerUnavailable
from duru.remote.config import RemoteConfig, check_url, describe_url, redact
from duru.remote.embedded import server_url

Pool = ConnectionPool[Connection[TupleRow]]


def connect(
    config: RemoteConfig, url: str | None = None, *, autocommit: bool = False
) -> Connection[TupleRow]:
    """Open one configured connection (not pooled), e.g. for DDL outside a transaction.

    ``url`` defaults to ``server_url(config)``. Raises ServerUnavailable when unreachable.
    """
    target = url if url is not None else server_url(config)
    try:
        conn = psycopg.connect(target, autocommit=autocommit, **_connect_kwargs(config))
    except psycopg.OperationalError as exc:
        raise ServerUnavailable(_unreachable(target, exc)) from exc
    try:
        _configure_with(config)(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def open_pool(
    config: RemoteConfig, url: str | None = None, *, name: str = "duru", autocommit: bool = False
) -> Pool:
    """Open a pool with ``pool_min_size`` connections ready, or raise ServerUnavailable.

    ``url`` defaults to ``server_url(config)``. Connections are checked when taken out (if
    ``check_on_checkout``) so a connection the server dropped is replaced, not handed out.
    Close it with ``pool.close()`` or use it as a context manager. ``autocommit``: each
    statement outside ``conn.transaction()`` commits on its own.
    """
    target = url if url is not None else server_url(config)
    # One direct attempt first: the pool only logs why it cannot connect, then times out,
    # while this fails fast with the server's own reason.
    connect(config, target).close()
    pool: Pool = ConnectionPool(
        target,
        kwargs={**_connect_kwargs(config), "autocommit": autocommit},
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        open=False,
        configure=_configure_with(config),
        check=ConnectionPool.check_connection if config.check_on_checkout else None,
        name=name,
        timeout=config.pool_timeout,
        max_idle=config.max_idle,
        max_lifetime=config.max_lifetime,
    )
    try:
        pool.open(wait=True, timeout=config.connect_timeout)
    except PoolTimeout as exc:
        pool.close()
        raise ServerUnavailable(
            f"pool {name!r} could not open {config.pool_min_size} connection(s) to "
            f"{describe_url(target)} within {config.connect_timeout:g}s"
        ) from exc
    return pool


@contextmanager
def pooled_connection(pool: Pool, timeout: float | None = None) -> Iterator[Connection[TupleRow]]:
    """Borrow a connection; its transaction commits on success, rolls back on error.

    Raises ServerUnavailable when none is free within ``timeout`` (default: the pool's),
    which means the server is down or the pool is exhausted.
    """
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(pool.connection(timeout))
        except PoolTimeout as exc:
            raise ServerUnavailable(
                f"no connection from pool {pool.name!r} within "
                f"{pool.timeout if timeout is None else timeout:g}s "
                f"(server down or pool exhausted: {pool.get_stats().get('pool_size', 0)} open, "
                f"max {pool.max_size})"
            ) from exc
        yield conn


def _connect_kwargs(config: RemoteConfig) -> dict[str, Any]:
    # libpq takes whole seconds and treats values below 2 as 2.
    return {
        "connect_timeout": max(2, math.ceil(config.connect_timeout)),
        "application_name": config.application_name,
    }


def _configure_with(config: RemoteConfig) -> Callable[[Connection[Any]], None]:
    """The per-connection hook: apply the session settings in one round trip, leave idle."""
    settings = config.session_settings()
    query = "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in settings)
    params = [item for pair in settings.items() for item in pair]

    def configure(conn: Connection[Any]) -> None:
        conn.execute(query, params)
        conn.commit()  # the pool refuses a connection left inside a transaction

    return configure


def _unreachable(url: str, exc: Exception) -> str:
    password = check_url(url).get("password")
    reason = " ".join(str(exc).split())
    return redact(f"cannot connect to PostgreSQL at {describe_url(url)}: {reason}", password)
