"""The sync server: an ASGI app over the server store that sees only ciphertext.

``serve()`` runs it (``duru serve``); ``create_app()`` builds the app around a pool of the
server role for tests and embedding; ``apply_push`` and ``read_page`` are the two halves of
the protocol on one database connection.
"""

from duru.server.app import create_app, server_pool
from duru.server.config import ServerConfig
from duru.server.pull import Page, read_page
from duru.server.push import apply_push
from duru.server.run import owner_database, prepare, serve
from duru.server.tombstones import purge_tombstones

__all__ = [
    "Page",
    "ServerConfig",
    "apply_push",
    "create_app",
    "owner_database",
    "prepare",
    "purge_tombstones",
    "read_page",
    "serve",
    "server_pool",
]
