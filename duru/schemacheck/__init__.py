"""``duru schema check``: a live device file and a live server database against the model.

``check_schema(local_path, remote_url)`` returns a ``SchemaReport`` listing every
``Mismatch`` (missing or extra tables, columns and indexes, type, nullability and enum
differences, secret fields stored as plaintext on the server, keys, row level security,
fingerprints); ``report.ok`` is true when nothing is an error.
"""

from .check import check_device_file, check_schema, check_server_connection
from .report import Mismatch, MismatchKind, SchemaReport

__all__ = [
    "Mismatch",
    "MismatchKind",
    "SchemaReport",
    "check_device_file",
    "check_schema",
    "check_server_connection",
]
