"""Settings for the server store: where PostgreSQL is, how the pool behaves.

``RemoteConfig.from_env()`` reads ``DURU_*`` environment variables; keyword overrides win over
the environment, and fields left unset keep their defaults. With no ``DURU_DATABASE_URL`` the
server side runs on an embedded PostgreSQL under ``<home>/pg`` (see ``duru.remote.embedded``).
Durations are seconds (floats), as in psycopg_pool.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg.conninfo import conninfo_to_dict

from duru.errors import UsageError

APP_NAME = "duru"

_ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DURU_DATABASE_URL": ("database_url", str),
    "DURU_HOME": ("home", lambda raw: Path(raw).expanduser()),
    "DURU_POOL_MIN_SIZE": ("pool_min_size", int),
    "DURU_POOL_MAX_SIZE": ("pool_max_size", int),
    "DURU_POOL_TIMEOUT": ("pool_timeout", float),
    "DURU_CONNECT_TIMEOUT": ("connect_timeout", float),
    "DURU_STATEMENT_TIMEOUT": ("statement_timeout", float),
    "DURU_LOCK_TIMEOUT": ("lock_timeout", float),
    "DURU_IDLE_IN_TRANSACTION_TIMEOUT": ("idle_in_transaction_timeout", float),
    "DURU_POOL_MAX_IDLE": ("max_idle", float),
    "DURU_POOL_MAX_LIFETIME": ("max_lifetime", float),
}


def default_home() -> Path:
    """The per-user data folder duru uses when ``DURU_HOME`` is not set."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


@dataclass(frozen=True)
class RemoteConfig:
    """How duru reaches and uses its PostgreSQL server.

    ``database_url`` None means "start the embedded server". Timeouts of 0 disable the
    corresponding PostgreSQL limit (its own convention).
    """

    database_url: str | None = None
    home: Path = field(default_factory=default_home)
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 30.0
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0
    lock_timeout: float = 5.0
    idle_in_transaction_timeout: float = 60.0
    max_idle: float = 600.0
    max_lifetime: float = 3600.0
    check_on_checkout: bool = True
    application_name: str = APP_NAME

    def __post_init__(self) -> None:
        if self.pool_min_size < 0 or self.pool_max_size < max(self.pool_min_size, 1):
            raise UsageError(
                f"pool sizes must satisfy 0 <= min <= max and max >= 1 "
                f"(got min={self.pool_min_size}, max={self.pool_max_size})"
            )
        for name in ("pool_timeout", "connect_timeout", "max_idle", "max_lifetime"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be positive (got {getattr(self, name)})")
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_timeout"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.database_url is not None:
            check_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RemoteConfig:
        """Build a config from ``DURU_*`` variables, then apply ``overrides``.

        Raises UsageError naming the variable when a value does not parse.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, (name, parse) in _ENV_FIELDS.items():
            raw = env.get(var, "").strip()
            if raw:
                values[name] = _parse(var, raw, parse)
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UsageError(f"unknown RemoteConfig field(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    @property
    def pgdata(self) -> Path:
        """The embedded server's data directory."""
        return self.home / "pg"

    def session_settings(self) -> dict[str, str]:
        """The PostgreSQL settings every duru connection runs with, as SET values."""
        return {
            "statement_timeout": _ms(self.statement_timeout),
            "lock_timeout": _ms(self.lock_timeout),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_timeout),
            "application_name": self.application_name,
            # psycopg cannot load timestamptz of years 1 and 9999 in zones with an offset.
            "TimeZone": "UTC",
        }


def _parse(var: str, raw: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(raw)
    except ValueError:
        raise UsageError(f"{var}={raw!r} is not a valid value") from None


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def check_url(url: str) -> dict[str, str]:
    """Parse a PostgreSQL URL or key=value conninfo; raise UsageError (password-free) if bad."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"not a valid PostgreSQL URL: {redact(str(exc))}") from None


def describe_url(url: str) -> str:
    """A password-free ``user@host:port/dbname`` for messages and logs."""
    params = check_url(url)
    user = params.get("user", "")
    host = params.get("host", "") or "localhost"
    port = params.get("port", "")
    where = f"{host}:{port}" if port else host
    return f"{user + '@' if user else ''}{where}/{params.get('dbname', '')}"


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database (URL form stays a URL)."""
    match = re.match(r"^(postgres(?:ql)?://[^/?#]*)(/[^?#]*)?(.*)$", url)
    if match:
        return f"{match.group(1)}/{dbname}{match.group(3)}"
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def with_role(url: str, user: str, password: str) -> str:
    """The same server and database, logged in as ``user`` with ``password``."""
    params = check_url(url)
    params.update(user=user, password=password)
    return psycopg.conninfo.make_conninfo("", **params)


_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, password: str | None = None) -> str:
    """Hide passwords in a URL, a conninfo string or an error message quoting one."""
    if password:
        text = text.replace(password, "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KV_PASSWORD.sub(r"\1***", text)
