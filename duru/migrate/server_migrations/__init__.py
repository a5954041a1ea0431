"""The versioned migrations of duru's own server schema, as data.

A server database is at the version its ``duru_meta.schema_version`` says
(:func:`duru.remote.schema.apply_server_schema` makes the current one,
:data:`~duru.remote.schema.SERVER_SCHEMA_VERSION`). Each migration moves it one
version on; :data:`SERVER_MIGRATIONS` chains them. Earlier layouts are in
:mod:`.history`.
"""

from __future__ import annotations

from duru.migrate.postgres.plan import server_set
from duru.migrate.server_migrations import m0001_seal_note_titles, m0002_row_macs, m0003_snapshots
from duru.remote.schema import SERVER_SCHEMA_VERSION

SERVER_MIGRATIONS = server_set(
    (m0001_seal_note_titles.MIGRATION, m0002_row_macs.MIGRATION, m0003_snapshots.MIGRATION),
    current=str(SERVER_SCHEMA_VERSION),
)

__all__ = ["SERVER_MIGRATIONS"]
