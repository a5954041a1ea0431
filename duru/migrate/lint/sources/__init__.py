"""Read the SQL a file holds: a whole `.sql` file, or the SQL-looking strings of a host file.

Host files (`.py`, `.dart`, `.ts`, `.kt`, `.swift`) are scanned for string
literals; only those that `looks_like_sql` are kept. Python strings are then put
in the order they run and given their transaction frame (`pyframe`). Their comments come along,
because suppressions and the backup marker may be written in the host's syntax.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from duru.migrate.lint.sources.base import (
    HostComment,
    LineMap,
    Literal,
    ScannedSource,
    ScanProblem,
    show_placeholders,
)
from duru.migrate.lint.sources.dart import scan_dart
from duru.migrate.lint.sources.detect import looks_like_sql
from duru.migrate.lint.sources.kotlin import scan_kotlin
from duru.migrate.lint.sources.pyframe import frame_python
from duru.migrate.lint.sources.python import scan_python
from duru.migrate.lint.sources.swift import scan_swift
from duru.migrate.lint.sources.typescript import scan_typescript

_HOST_SCANNERS: dict[str, Callable[[str], ScannedSource]] = {
    ".dart": scan_dart,
    ".kt": scan_kotlin,
    ".py": scan_python,
    ".swift": scan_swift,
    ".ts": scan_typescript,
}

SUPPORTED_SUFFIXES = frozenset({".sql", *_HOST_SCANNERS})


def scan_source(path: Path, text: str) -> ScannedSource:
    """The SQL texts of `text`, read as the kind of file `path` names.

    Raises KeyError for a suffix outside `SUPPORTED_SUFFIXES`.
    """
    suffix = path.suffix.lower()
    if suffix == ".sql":
        return ScannedSource((Literal(text, LineMap.identity(text), 1),), (), is_sql_file=True)
    scanned = _HOST_SCANNERS[suffix](text)
    sql = tuple(literal for literal in scanned.literals if looks_like_sql(literal.text))
    wrapped = False
    if suffix == ".py":
        framed = frame_python(text, sql)
        sql, wrapped = framed.literals, framed.wrapped
    return ScannedSource(
        sql, scanned.comments, scanned.problems, placeholders=scanned.placeholders, wrapped=wrapped
    )


__all__ = [
    "SUPPORTED_SUFFIXES",
    "HostComment",
    "LineMap",
    "Literal",
    "ScanProblem",
    "ScannedSource",
    "scan_source",
    "show_placeholders",
]
