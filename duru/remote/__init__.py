"""The server store on PostgreSQL: where the server is, and connections to it."""

from duru.remote.config import RemoteConfig, default_home, describe_url, redact, with_database
from duru.remote.embedded import EmbeddedPostgres, RemoteServer, server_url
from duru.remote.pool import Pool, connect, open_pool, pooled_connection

__all__ = [
    "EmbeddedPostgres",
    "Pool",
    "RemoteConfig",
    "RemoteServer",
    "connect",
    "default_home",
    "describe_url",
    "open_pool",
    "pooled_connection",
    "redact",
    "server_url",
    "with_database",
]
