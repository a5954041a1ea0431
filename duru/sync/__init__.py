"""Moving a device's data to the server and back.

``upload`` / ``download`` transfer a whole device database to or from the server
database in bulk (sealed on the client, set-based on the server) and return a
``TransferReport``; ``Progress`` is the shape of their optional progress callback.
"""

from duru.sync.bulk import DEFAULT_CHUNK_ROWS, download, upload
from duru.sync.server_account import KDF_FLOOR, KdfFloor
from duru.sync.transfer import EntityTransfer, Progress, TransferReport

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "EntityTransfer",
    "KDF_FLOOR",
    "KdfFloor",
    "Progress",
    "TransferReport",
    "download",
    "upload",
]
