"""Which SQL dialect a file's migration is written in.

Order of evidence, first match wins:

1. the caller's explicit `dialect` (the CLI's ``--dialect``);
2. the path as the caller gave it: a folder or file name containing ``postgres``,
   ``supabase`` or ``server`` means PostgreSQL;
3. the SQL itself: PostgreSQL-only syntax (``CONCURRENTLY``, ``NOT VALID``,
   ``VALIDATE CONSTRAINT``, ``ALTER COLUMN``, ``SET NOT NULL``, ``lock_timeout`` /
   ``statement_timeout``, ``$$`` bodies, ``::`` casts, the types ``jsonb``,
   ``timestamptz``, ``bytea``, ``bigserial``, ``CREATE EXTENSION``,
   ``CREATE POLICY``, ``ROW LEVEL SECURITY``) means PostgreSQL;
4. otherwise SQLite, the device database.

The whole file gets one dialect, since it is one migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from duru.migrate.lint.sqltext import Dialect

_PATH_WORDS = ("postgres", "supabase", "server")

_POSTGRES_ONLY = re.compile(
    r"\bCONCURRENTLY\b|\bNOT\s+VALID\b|\bVALIDATE\s+CONSTRAINT\b|\bALTER\s+COLUMN\b"
    r"|\bSET\s+NOT\s+NULL\b|\b(?:lock|statement)_timeout\b|\$\$|::\s*[A-Za-z_]"
    r"|\b(?:jsonb|timestamptz|bytea|bigserial)\b|\bCREATE\s+(?:EXTENSION|POLICY)\b"
    r"|\bROW\s+LEVEL\s+SECURITY\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DialectChoice:
    """The dialect and the evidence for it: "flag", "path", "syntax" or "default"."""

    dialect: Dialect
    reason: str


def choose_dialect(path: PurePath, sql_texts: list[str], flag: Dialect | None) -> DialectChoice:
    """Pick the dialect of one file (see the module docstring for the order)."""
    if flag is not None:
        return DialectChoice(flag, "flag")
    parts = [part.lower() for part in path.parts]
    if any(word in part for part in parts for word in _PATH_WORDS):
        return DialectChoice("postgres", "path")
    if any(_POSTGRES_ONLY.search(text) for text in sql_texts):
        return DialectChoice("postgres", "syntax")
    return DialectChoice("sqlite", "default")
