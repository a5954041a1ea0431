"""Earlier layouts of duru's server schema, as data, for migrations to start from.

Version 2 is today's layout without the snapshot tables (migration 0003 makes
them). Version 1 is version 2 without row MACs (no ``row_mac`` column: migration
0002 adds them). Version 0 is the app's crisis-era server: as version 1, but
``notes.title`` kept as plaintext ``text`` where the model wants the sealed
``title_enc bytea``. Both are derived from today's DDL with those differences,
so they never drift from the model anywhere else.
"""

from __future__ import annotations

from duru.model import MODEL_FINGERPRINT
from duru.remote.layout import META, ROW_MAC, snapshot_tables
from duru.remote.schema import fingerprint_ddl, server_ddl, table_ddl

V0 = "0"
V0_FINGERPRINT = "crisis-era"
V1 = "1"
V1_FINGERPRINT = "before-row-macs"
V2 = "2"
_SEALED = "    title_enc bytea NOT NULL,\n"
_PLAIN = "    title text NOT NULL,\n"
_ROW_MAC = f"    {ROW_MAC} bytea NOT NULL,\n"


def schema_v2_ddl() -> list[str]:
    """Every statement that creates a version-2 server database (with its duru_meta rows),
    exactly as the build before snapshots made it: the same DDL and fingerprints."""
    tables = _v2_tables()
    meta = {
        "schema_version": V2,
        "model_fingerprint": MODEL_FINGERPRINT,
        "schema_fingerprint": fingerprint_ddl(tables),
    }
    return tables + _rows(meta)


def schema_v1_ddl() -> list[str]:
    """Every statement that creates a version-1 server database (with its duru_meta rows)."""
    return _without_macs(_v2_tables()) + _meta(V1, V1_FINGERPRINT)


def schema_v0_ddl() -> list[str]:
    """Every statement that creates a version-0 server database (with its duru_meta rows)."""
    out = []
    for stmt in _without_macs(_v2_tables()):
        if _SEALED in stmt and _table_of(stmt) == "notes":
            stmt = stmt.replace(_SEALED, _PLAIN)
        out.append(stmt)
    return out + _meta(V0, V0_FINGERPRINT)


def _v2_tables() -> list[str]:
    """Today's DDL without the snapshot tables (version 3 added them)."""
    added = {stmt for t in snapshot_tables() for stmt in table_ddl(t)}
    return [stmt for stmt in server_ddl() if stmt not in added]


def _without_macs(ddl: list[str]) -> list[str]:
    out = [stmt.replace(_ROW_MAC, "") for stmt in ddl]
    if any(ROW_MAC in stmt for stmt in out):
        raise AssertionError(f"{ROW_MAC} is left in the version-1 DDL: its layout changed")
    return out


def _meta(version: str, fingerprint: str) -> list[str]:
    return _rows(
        {"schema_version": version, "model_fingerprint": fingerprint, "schema_fingerprint": version}
    )


def _rows(meta: dict[str, str]) -> list[str]:
    return [f"INSERT INTO {META} (key, value) VALUES ('{k}', '{v}')" for k, v in meta.items()]


def _table_of(create: str) -> str:
    # The word before the first parenthesis of a CREATE statement names the table.
    return create.split("(", 1)[0].split()[-1]
