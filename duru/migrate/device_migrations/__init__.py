"""The versioned migrations of duru's own device schema, as data.

A device file is at schema version ``duru_meta.schema_version`` (``"1"`` is
what :meth:`duru.local.Database.open` creates today), or at ``"legacy:11"``
when it is a Duru Notes app file of version 11 that duru has not taken over
yet. Each migration moves a file one version on; :data:`DEVICE_MIGRATIONS`
chains them up to :data:`duru.local.schema.SCHEMA_VERSION`.
"""

from __future__ import annotations

import sqlite3

from duru.errors import SchemaMismatch
from duru.local.legacy import LEGACY_VERSION
from duru.local.schema import SCHEMA_VERSION
from duru.migrate.device_migrations.legacy_v11 import LEGACY_V11, SET_ASIDE
from duru.migrate.migration import MigrationSet

LEGACY = f"legacy:{LEGACY_VERSION}"


def detect_version(conn: sqlite3.Connection) -> str:
    """The schema version of the device file behind ``conn``.

    Raises SchemaMismatch for a database that is neither a duru device file
    nor a version 11 app file.
    """
    tables = {
        str(r[0]) for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    }
    if "duru_meta" in tables:
        found = conn.execute("SELECT value FROM duru_meta WHERE key = 'schema_version'").fetchone()
        if found is not None:
            return str(found[0])
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    # Mid-upgrade, the v11 tables are set aside under another name (see legacy_v11).
    legacy = {"local_notes", SET_ASIDE + "local_notes"} & tables
    if legacy and user_version in (0, LEGACY_VERSION):
        return LEGACY
    raise SchemaMismatch(
        "this SQLite file is neither a duru device database nor a version"
        f" {LEGACY_VERSION} Duru Notes database (user_version {user_version})"
    )


DEVICE_MIGRATIONS = MigrationSet((LEGACY_V11,), current=str(SCHEMA_VERSION), detect=detect_version)

__all__ = ["DEVICE_MIGRATIONS", "LEGACY", "detect_version"]
