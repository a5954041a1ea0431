"""Decide whether a host-language string is SQL worth linting.

A string counts as SQL when, after leading whitespace and SQL comments, it starts
with a statement keyword followed by something that keyword can be followed by
(``CREATE TABLE``, ``DELETE FROM``, ``UPDATE x SET``, ...). The second check keeps
user-interface text such as "Delete note?" or "Create a folder" out of the linter.
Keywords that are also ordinary English words when alone (``BEGIN``, ``COMMIT``,
``END``, ``RELEASE``, ...) count only when written in upper case.
"""

from __future__ import annotations

import re

_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)

_OBJECTS = (
    r"(?:TABLE|INDEX|UNIQUE|VIEW|TRIGGER|VIRTUAL|TEMP|TEMPORARY|OR|EXTENSION|SCHEMA|TYPE"
    r"|FUNCTION|PROCEDURE|SEQUENCE|MATERIALIZED|POLICY|DOMAIN|ROLE|PUBLICATION|AGGREGATE"
    r"|RULE|COLUMN|CONSTRAINT|OWNED|UNLOGGED|IF)\b"
)

_FOLLOW: dict[str, str] = {
    "SELECT": r"(?:[\d'\"(*]|.*\bFROM\b)",
    "INSERT": r"(?:INTO|OR)\b",
    "REPLACE": r"INTO\b",
    "UPDATE": r"(?:OR\b|[\w.\"`\[\]]+\s+SET\b)",
    "DELETE": r"FROM\b",
    "CREATE": _OBJECTS,
    "DROP": _OBJECTS,
    "ALTER": _OBJECTS,
    "PRAGMA": r"[\w.]+",
    "WITH": r"(?:RECURSIVE\s+)?[\w\"]+\s*(?:\([^)]*\))?\s+AS\b",
    "SET": r"(?:(?:LOCAL|SESSION)\s+)?[\w.]+\s*(?:=|TO\b)",
    "TRUNCATE": r"(?:TABLE\b|ONLY\b|[\w.\"]+\s*(?:;|$|,|RESTART\b|CONTINUE\b|CASCADE\b))",
    "COMMENT": r"ON\b",
    "GRANT": r"(?:ALL|SELECT|INSERT|UPDATE|DELETE|USAGE|EXECUTE|CREATE|CONNECT|REFERENCES)\b",
    "REVOKE": r"(?:ALL|SELECT|INSERT|UPDATE|DELETE|USAGE|EXECUTE|CREATE|CONNECT|REFERENCES)\b",
    "LOCK": r"(?:TABLE\b|[\w.\"]+\s+IN\b)",
    "DO": r"(?:\$|LANGUAGE\b)",
    "ATTACH": r"(?:DATABASE\b|['\"])",
    "DETACH": r"(?:DATABASE\b|[\w\"]+\s*(?:;|$))",
    "START": r"TRANSACTION\b",
    "CLUSTER": r"[\w.\"]+",
}

# Alone, these read as English; they count only in upper case.
_UPPER_ONLY: dict[str, str] = {
    "BEGIN": r"(?:;|$|TRANSACTION\b|DEFERRED\b|IMMEDIATE\b|EXCLUSIVE\b|ISOLATION\b|WORK\b|READ\b)",
    "COMMIT": r"(?:;|$|TRANSACTION\b|WORK\b|AND\b|PREPARED\b)",
    "END": r"(?:;|$|TRANSACTION\b|WORK\b)",
    "ROLLBACK": r"(?:;|$|TRANSACTION\b|WORK\b|TO\b|PREPARED\b|AND\b)",
    "SAVEPOINT": r"[\w\"]+",
    "RELEASE": r"(?:SAVEPOINT\b|[\w\"]+\s*(?:;|$))",
    "VACUUM": r"(?:;|$|INTO\b|FULL\b|ANALYZE\b|VERBOSE\b|\(|[\w\"]+\s*(?:;|$|INTO\b))",
    "ANALYZE": r"(?:;|$|VERBOSE\b|[\w.\"]+\s*(?:;|$))",
    "REINDEX": r"(?:;|$|INDEX\b|TABLE\b|SCHEMA\b|DATABASE\b|\(|[\w.\"]+\s*(?:;|$))",
}

_FIRST_WORD = re.compile(r"([A-Za-z]+)\s*")


def strip_leading_noise(text: str) -> str:
    """The text without leading whitespace and SQL comments."""
    match = _LEADING_NOISE.match(text)
    return text[match.end() :] if match else text


def looks_like_sql(text: str) -> bool:
    """True when `text` starts like a SQL statement (see the module docstring)."""
    body = strip_leading_noise(text)
    match = _FIRST_WORD.match(body)
    if match is None:
        return False
    word = match.group(1)
    keyword = word.upper()
    rest = body[match.end() :]
    if keyword in _UPPER_ONLY:
        return word == keyword and _follows(_UPPER_ONLY[keyword], rest)
    pattern = _FOLLOW.get(keyword)
    return pattern is not None and _follows(pattern, rest)


def _follows(pattern: str, rest: str) -> bool:
    return re.match(pattern, rest, re.IGNORECASE | re.DOTALL) is not None
