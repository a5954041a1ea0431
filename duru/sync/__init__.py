"""Moving a device's data to the server and back.

``register`` / ``login`` / ``sync`` / ``logout`` keep a device in sync through a sync server
(``duru serve``) that sees only ciphertext: the outbox is pushed, every change pulled.

``upload`` / ``download`` transfer a whole device database to or from the server
database in bulk (sealed on the client, set-based on the server) and return a
``TransferReport``; ``Progress`` is the shape of their optional progress callback.
"""

from duru.sync.bulk import DEFAULT_CHUNK_ROWS, download, upload
from duru.sync.client import SyncReport, login, logout, register, sync, sync_home
from duru.sync.server_account import KDF_FLOOR, KdfFloor
from duru.sync.transfer import EntityTransfer, Progress, TransferReport

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "EntityTransfer",
    "KDF_FLOOR",
    "KdfFloor",
    "Progress",
    "SyncReport",
    "TransferReport",
    "download",
    "login",
    "logout",
    "register",
    "sync",
    "sync_home",
    "upload",
]
