"""Which SQL dialect a file's migration is written in, and the evidence for it.

Order of evidence, first match wins:

1. "flag": the caller's explicit dialect (the CLI's ``--dialect``, or the config);
2. "path": a folder or file name (as the caller gave it) containing ``postgres``,
   ``supabase`` or ``server`` means PostgreSQL;
3. "syntax": the SQL itself. PostgreSQL-only syntax (``CONCURRENTLY``, ``NOT
   VALID``, ``ALTER COLUMN``, ``$$`` bodies, ``::`` casts, ``jsonb``,
   ``timestamptz``, ``CREATE POLICY``, ``LANGUAGE plpgsql``, ``auth.uid()`` ...)
   against SQLite-only syntax (``PRAGMA``, ``AUTOINCREMENT``, ``INSERT OR``,
   ``WITHOUT ROWID``, ``STRICT``, ``VACUUM INTO`` ...); the side with more
   distinct markers wins, PostgreSQL on a tie;
4. "folder": files of the same kind (suffix) in the same folder that showed
   syntax evidence agree on a dialect (see `settle_by_folder`);
5. "default": SQLite, the device database. The report says so for each such file.

The whole file gets one dialect, since it is one migration.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

from duru.migrate.lint.sqltext import Dialect

_PATH_WORDS = ("postgres", "supabase", "server")

_POSTGRES_ONLY = re.compile(
    r"\bCONCURRENTLY\b|\bNOT\s+VALID\b|\bVALIDATE\s+CONSTRAINT\b|\bALTER\s+COLUMN\b"
    r"|\bSET\s+NOT\s+NULL\b|\b(?:lock|statement)_timeout\b|\$\$|::\s*[A-Za-z_]"
    r"|\b(?:jsonb|timestamptz|bytea|bigserial|smallserial|tsvector)\b"
    r"|\bCREATE\s+(?:EXTENSION|POLICY|SCHEMA|DOMAIN|TYPE|PUBLICATION)\b"
    r"|\bROW\s+LEVEL\s+SECURITY\b|\bLANGUAGE\s+plpgsql\b|\bauth\.uid\s*\("
    r"|\bgen_random_uuid\s*\(|\bTIMESTAMP\s+WITH\s+TIME\s+ZONE\b|\bGRANT\b|\bREVOKE\b"
    r"|\bCOMMENT\s+ON\b|\bsearch_path\b|\bpublic\.\w|\bDO\s+\$|\bAS\s+ENUM\b",
    re.IGNORECASE,
)
_SQLITE_ONLY = re.compile(
    r"\bPRAGMA\b|\bAUTOINCREMENT\b|\bINSERT\s+OR\s+(?:IGNORE|REPLACE|ABORT|FAIL|ROLLBACK)\b"
    r"|\bREPLACE\s+INTO\b|\bWITHOUT\s+ROWID\b|\)\s*STRICT\b|\bVACUUM\s+INTO\b"
    r"|\bsqlite_\w+|\bBEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED)\b|\bdatetime\s*\('now'",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DialectChoice:
    """The dialect and the evidence for it: flag, path, syntax, folder or default."""

    dialect: Dialect
    reason: str

    @property
    def guessed(self) -> bool:
        """True when nothing but the fallback chose it (the report warns about these)."""
        return self.reason == "default"


def choose_dialect(path: PurePath, sql_texts: list[str], flag: Dialect | None) -> DialectChoice:
    """Pick the dialect of one file from the flag, its path and its SQL (steps 1-3, 5)."""
    if flag is not None:
        return DialectChoice(flag, "flag")
    parts = [part.lower() for part in path.parts]
    if any(word in part for part in parts for word in _PATH_WORDS):
        return DialectChoice("postgres", "path")
    postgres = _markers(_POSTGRES_ONLY, sql_texts)
    sqlite = _markers(_SQLITE_ONLY, sql_texts)
    if postgres and postgres >= sqlite:
        return DialectChoice("postgres", "syntax")
    if sqlite:
        return DialectChoice("sqlite", "syntax")
    return DialectChoice("sqlite", "default")


def _markers(pattern: re.Pattern[str], texts: list[str]) -> int:
    return len({match.group(0).lower() for text in texts for match in pattern.finditer(text)})


def settle_by_folder(
    paths: Sequence[PurePath], choices: Sequence[DialectChoice]
) -> list[DialectChoice]:
    """Step 4: a file without evidence takes the dialect its folder's files of its kind show.

    Only files chosen by "syntax" or "path" vote; a tie or no vote leaves the default.
    """
    votes: dict[tuple[PurePath, str], Counter[Dialect]] = {}
    for path, choice in zip(paths, choices, strict=True):
        if choice.reason in ("syntax", "path"):
            key = (path.parent, path.suffix.lower())
            votes.setdefault(key, Counter())[choice.dialect] += 1
    settled = []
    for path, choice in zip(paths, choices, strict=True):
        ranked = votes.get((path.parent, path.suffix.lower()), Counter()).most_common()
        clear = ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1])
        if choice.guessed and clear:
            choice = replace(choice, dialect=ranked[0][0], reason="folder")
        settled.append(choice)
    return settled
