"""Earlier layouts of duru's server schema, as data, for migrations to start from.

Version 0 is the app's crisis-era server: ``notes.title`` kept as plaintext
``text`` where the model wants the sealed ``title_enc bytea``. Everything
else is as version 1; the layout is derived from today's DDL with that one
difference, so it never drifts from the model anywhere else.
"""

from __future__ import annotations

from duru.remote.layout import META
from duru.remote.schema import server_ddl

V0 = "0"
V0_FINGERPRINT = "crisis-era"
_SEALED = "    title_enc bytea NOT NULL,\n"
_PLAIN = "    title text NOT NULL,\n"


def schema_v0_ddl() -> list[str]:
    """Every statement that creates a version-0 server database (with its duru_meta rows)."""
    out = []
    for stmt in server_ddl():
        if _SEALED in stmt and _table_of(stmt) == "notes":
            stmt = stmt.replace(_SEALED, _PLAIN)
        out.append(stmt)
    meta = {"schema_version": V0, "model_fingerprint": V0_FINGERPRINT, "schema_fingerprint": V0}
    out += [f"INSERT INTO {META} (key, value) VALUES ('{k}', '{v}')" for k, v in meta.items()]
    return out


def _table_of(create: str) -> str:
    # The word before the first parenthesis of a CREATE statement names the table.
    return create.split("(", 1)[0].split()[-1]
