"""Turn one file into a `Migration`: scan it, split its SQL, parse every statement.

Loading has two steps because a file's dialect may depend on its folder
(`dialect.settle_by_folder`): `scan_file` finds the SQL texts (cheap), and
`parse_file` splits and parses them once the dialect is settled.

Statements built at run time
    A host string may interpolate SQL fragments (``'CREATE TABLE t (${columns})'``).
    The placeholder standing for each interpolation reads as a name; when that
    does not parse, the statement is read again with the placeholders left out.
    When neither parses, the statement is counted as not understood (the report
    says how many) rather than reported as a syntax error: its SQL only exists at
    run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from duru.migrate.lint.dialect import DialectChoice, choose_dialect
from duru.migrate.lint.migration import Comment, Migration, Statement
from duru.migrate.lint.pg_reader import read_postgres
from duru.migrate.lint.reading import Reading
from duru.migrate.lint.rules import PARSE_ERROR, Rule, Severity
from duru.migrate.lint.sources import ScannedSource, scan_source
from duru.migrate.lint.sources.base import PLACEHOLDER_PREFIX, LineMap
from duru.migrate.lint.sqlite_reader import SqliteReader
from duru.migrate.lint.sqltext import Dialect, split_sql
from duru.migrate.lint.suppress import Span

_PLACEHOLDER = re.compile(PLACEHOLDER_PREFIX + r"\d+")


@dataclass(frozen=True)
class Pending:
    """A rule matched; suppressions decide whether it becomes an active finding."""

    rule: Rule
    span: Span
    statement: str
    message: str
    severity: Severity


@dataclass(frozen=True)
class ScannedFile:
    """A file's SQL texts and comments, before its dialect is settled."""

    path: Path
    source: ScannedSource
    unreadable: str | None = None

    @property
    def sql_texts(self) -> list[str]:
        return [literal.text for literal in self.source.literals]


@dataclass
class LoadedFile:
    """One parsed file: its migration, how its dialect was chosen, and file-level problems.

    `not_understood` counts valid statements without a fact model; `runtime_built`
    counts statements whose SQL is only complete at run time (see the module doc).
    """

    migration: Migration
    choice: DialectChoice
    problems: list[Pending] = field(default_factory=list)
    not_understood: int = 0
    runtime_built: int = 0
    placeholders: Mapping[str, str] = field(default_factory=dict)


def scan_file(path: Path, text: str | None = None) -> ScannedFile:
    """Read (unless `text` is given) and scan one file; an unreadable file is a problem."""
    unreadable = None
    if text is None:
        text, unreadable = read_text(path)
    return ScannedFile(path, scan_source(path, text), unreadable)


def first_choice(scanned: ScannedFile, flag: Dialect | None) -> DialectChoice:
    """The dialect the file itself shows (before the folder is consulted)."""
    return choose_dialect(scanned.path, scanned.sql_texts, flag)


def read_text(path: Path) -> tuple[str, str | None]:
    """The file's text with newlines normalised, or ("", why it could not be read)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        return "", f"cannot read {path}: {error.strerror or error}"
    except UnicodeDecodeError as error:
        return "", f"cannot read {path}: not UTF-8 text (byte {error.start} is invalid)"
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def parse_file(scanned: ScannedFile, choice: DialectChoice, sqlite: SqliteReader) -> LoadedFile:
    """Split and parse every SQL text of `scanned` as `choice.dialect`."""
    source = scanned.source
    dialect = choice.dialect
    statements: list[Statement] = []
    comments = [Comment(c.line, c.text, c.own_line, host=True) for c in source.comments]
    runtime_built = 0
    unclosed: list[tuple[int, str]] = []
    for literal in source.literals:
        split = split_sql(literal.text, dialect)
        unclosed.extend(
            (literal.lines.line_at(offset), "unterminated /* comment: the rest is never run")
            for offset in split.unterminated
        )
        comments.extend(
            Comment(literal.lines.line_at(c.start), c.text, c.own_line, host=False)
            for c in split.comments
        )
        for raw in split.statements:
            reading, built = _read(raw.text, dialect, sqlite)
            runtime_built += built
            statements.append(
                Statement(
                    index=len(statements),
                    text=raw.text,
                    line=literal.lines.line_at(raw.start),
                    end_line=literal.lines.line_at(raw.end - 1),
                    open_line=None if source.is_sql_file else literal.open_line,
                    reading=reading,
                    column=_column(literal.lines, raw.start, source.is_sql_file),
                    end_column=_column(literal.lines, raw.end - 1, source.is_sql_file),
                    frame=literal.frame,
                )
            )
    comments.sort(key=lambda comment: comment.line)
    migration = Migration(
        str(scanned.path), dialect, tuple(statements), tuple(comments), source.wrapped
    )
    problems = [_file_problem(line, message) for line, message in _problems(scanned) + unclosed]
    problems.extend(_parse_errors(migration))
    not_understood = sum(not statement.reading.understood for statement in statements)
    return LoadedFile(
        migration, choice, problems, not_understood, runtime_built, source.placeholders
    )


def _column(lines: LineMap, offset: int, exact: bool) -> int | None:
    """1-based column of `offset` in a `.sql` file; None in host strings (decoded text)."""
    return lines.column_at(offset) if exact else None


def _problems(scanned: ScannedFile) -> list[tuple[int, str]]:
    problems = [(problem.line, problem.message) for problem in scanned.source.problems]
    return [(1, scanned.unreadable), *problems] if scanned.unreadable else problems


def _read(sql: str, dialect: Dialect, sqlite: SqliteReader) -> tuple[Reading, int]:
    """The statement's reading, and 1 when it is only complete at run time."""
    reading = _read_once(sql, dialect, sqlite)
    if reading.error is None or PLACEHOLDER_PREFIX not in sql:
        return reading, 0
    without = _read_once(_PLACEHOLDER.sub("", sql), dialect, sqlite)
    if without.error is None:
        return without, 0
    return Reading(understood=False), 1


def _read_once(sql: str, dialect: Dialect, sqlite: SqliteReader) -> Reading:
    return read_postgres(sql) if dialect == "postgres" else sqlite.read(sql)


def _file_problem(line: int, message: str) -> Pending:
    return Pending(PARSE_ERROR, Span(line, line), "", message, PARSE_ERROR.severity)


def _parse_errors(migration: Migration) -> list[Pending]:
    return [
        Pending(
            PARSE_ERROR,
            span_of(statement),
            statement.text,
            f"{migration.dialect} parser: {statement.reading.error}",
            PARSE_ERROR.severity,
        )
        for statement in migration.statements
        if statement.reading.error is not None
    ]


def span_of(statement: Statement) -> Span:
    """Where a finding on `statement` sits (lines, and the opening line of its host string)."""
    return Span(
        statement.line,
        statement.end_line,
        statement.open_line,
        statement.column,
        statement.end_column,
    )
