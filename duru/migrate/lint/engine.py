"""Run the linter over files: read, split, parse, check, suppress, report."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from duru.errors import NotFound, UsageError
from duru.migrate.lint.dialect import DialectChoice, choose_dialect
from duru.migrate.lint.facts import AddColumn, AlterColumnType, CreateTable, DropTable, SqlType
from duru.migrate.lint.migration import Comment, Migration, Statement
from duru.migrate.lint.pg_reader import read_postgres
from duru.migrate.lint.reading import Reading
from duru.migrate.lint.report import FileSummary, Finding, LintReport
from duru.migrate.lint.rules import (
    INVALID_SUPPRESSION,
    PARSE_ERROR,
    RULES,
    Check,
    Rule,
    RunContext,
    Severity,
)
from duru.migrate.lint.sources import SUPPORTED_SUFFIXES, ScannedSource, scan_source
from duru.migrate.lint.sqlite_reader import SqliteReader
from duru.migrate.lint.sqltext import Dialect, split_sql
from duru.migrate.lint.suppress import Span, parse_directives
from duru.migrate.lint.timeline import Timeline

_SKIPPED_FOLDERS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class _Pending:
    """A rule matched; suppressions decide whether it becomes an active finding."""

    rule: Rule
    span: Span
    statement: str
    message: str
    severity: Severity


@dataclass
class _File:
    migration: Migration
    choice: DialectChoice
    pending: list[_Pending] = field(default_factory=list)
    not_understood: int = 0


def lint_paths(paths: Sequence[Path], *, dialect: Dialect | None = None) -> LintReport:
    """Lint every supported file in `paths` (files, or folders searched recursively).

    `dialect` forces one dialect for all files; otherwise each file's is guessed
    (see `duru.migrate.lint.dialect`). Folders skip hidden folders, node_modules
    and __pycache__. Raises NotFound for a missing path and UsageError for a file
    whose suffix is not .sql, .py, .dart, .ts, .kt or .swift.
    """
    with SqliteReader() as sqlite:
        files = [_load(path, _read_text(path), dialect, sqlite) for path in collect_files(paths)]
    return _report(files)


def lint_source(text: str, path: Path, *, dialect: Dialect | None = None) -> LintReport:
    """Lint `text` as if it were the content of the file `path` (which need not exist)."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UsageError(f"cannot lint {path}: unsupported file type")
    with SqliteReader() as sqlite:
        return _report([_load(path, (text, None), dialect, sqlite)])


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """The files to lint, in the order given, folders expanded and sorted, without repeats."""
    found: dict[Path, Path] = {}
    for path in paths:
        if not path.exists():
            raise NotFound(f"no such file or folder: {path}")
        if path.is_dir():
            candidates = _walk(path)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            candidates = [path]
        else:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise UsageError(f"cannot lint {path}: supported file types are {supported}")
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)
    return list(found.values())


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_FOLDERS)
        files.extend(
            Path(root) / name
            for name in sorted(names)
            if Path(name).suffix.lower() in SUPPORTED_SUFFIXES
        )
    return files


def _read_text(path: Path) -> tuple[str, str | None]:
    """The file's text with newlines normalised, or ("", why it could not be read)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return "", f"cannot read {path}: {error}"
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def _load(
    path: Path, content: tuple[str, str | None], flag: Dialect | None, sqlite: SqliteReader
) -> _File:
    text, unreadable = content
    scanned = scan_source(path, text)
    choice = choose_dialect(path, [literal.text for literal in scanned.literals], flag)
    pending = [_file_problem(line, message) for line, message in _problems(scanned, unreadable)]
    statements: list[Statement] = []
    comments = [Comment(c.line, c.text, c.own_line, host=True) for c in scanned.comments]
    for literal in scanned.literals:
        split = split_sql(literal.text, choice.dialect)
        comments.extend(
            Comment(literal.lines.line_at(c.start), c.text, c.own_line, host=False)
            for c in split.comments
        )
        for raw in split.statements:
            reading = _read(raw.text, choice.dialect, sqlite)
            statements.append(
                Statement(
                    index=len(statements),
                    text=raw.text,
                    line=literal.lines.line_at(raw.start),
                    end_line=literal.lines.line_at(raw.end - 1),
                    open_line=None if scanned.is_sql_file else literal.open_line,
                    reading=reading,
                )
            )
    comments.sort(key=lambda comment: comment.line)
    migration = Migration(str(path), choice.dialect, tuple(statements), tuple(comments))
    pending.extend(_parse_errors(migration))
    not_understood = sum(not statement.reading.understood for statement in statements)
    return _File(migration, choice, pending, not_understood)


def _problems(scanned: ScannedSource, unreadable: str | None) -> list[tuple[int, str]]:
    problems = [(problem.line, problem.message) for problem in scanned.problems]
    return [(1, unreadable), *problems] if unreadable else problems


def _read(sql: str, dialect: Dialect, sqlite: SqliteReader) -> Reading:
    return read_postgres(sql) if dialect == "postgres" else sqlite.read(sql)


def _file_problem(line: int, message: str) -> _Pending:
    return _Pending(PARSE_ERROR, Span(line, line), "", message, PARSE_ERROR.severity)


def _parse_errors(migration: Migration) -> list[_Pending]:
    return [
        _Pending(
            PARSE_ERROR,
            _span(statement),
            statement.text,
            f"{migration.dialect} parser: {statement.reading.error}",
            PARSE_ERROR.severity,
        )
        for statement in migration.statements
        if statement.reading.error is not None
    ]


def _span(statement: Statement) -> Span:
    return Span(statement.line, statement.end_line, statement.open_line)


def _report(files: list[_File]) -> LintReport:
    findings: list[Finding] = []
    for position, file in enumerate(files):
        check = Check(file.migration, Timeline(file.migration), _context(files, position))
        pending = file.pending + _rule_hits(check)
        findings.extend(_apply_suppressions(file.migration, pending))
    findings.sort(key=lambda finding: (finding.file, finding.line, finding.rule))
    summaries = [
        FileSummary(
            file.migration.path,
            file.choice.dialect,
            file.choice.reason,
            len(file.migration.statements),
            file.not_understood,
        )
        for file in files
    ]
    return LintReport(findings, summaries)


def _rule_hits(check: Check) -> list[_Pending]:
    pending = []
    for rule in RULES:
        if rule.check is None or check.migration.dialect not in rule.dialects:
            continue
        for hit in rule.check(check):
            pending.append(
                _Pending(
                    rule,
                    _span(hit.statement),
                    hit.statement.text,
                    hit.message,
                    hit.severity or rule.severity,
                )
            )
    return pending


def _context(files: list[_File], position: int) -> RunContext:
    """Schema knowledge from the other files of the run that share this file's dialect."""
    dialect = files[position].migration.dialect
    cascade: dict[str, set[str]] = {}
    types: dict[tuple[str, str], SqlType] = {}
    for index, file in enumerate(files):
        if index == position or file.migration.dialect != dialect:
            continue
        for _, create in file.migration.each(CreateTable):
            for parent in create.cascade_parents:
                cascade.setdefault(parent, set()).add(create.name)
        if index < position:
            _collect_types(file.migration, types)
    children = {parent: frozenset(names) for parent, names in cascade.items()}
    return RunContext(cascade_children=children, column_types=types)


def _collect_types(migration: Migration, types: dict[tuple[str, str], SqlType]) -> None:
    for statement in migration.statements:
        for fact in statement.facts:
            if isinstance(fact, CreateTable):
                types.update(
                    ((fact.name, name), kind) for name, kind in fact.columns if kind is not None
                )
            elif isinstance(fact, AddColumn) and fact.type is not None:
                types[(fact.table, fact.column)] = fact.type
            elif isinstance(fact, AlterColumnType):
                types[(fact.table, fact.column)] = fact.new_type
            elif isinstance(fact, DropTable):
                for key in [key for key in types if key[0] == fact.name]:
                    del types[key]


def _apply_suppressions(migration: Migration, pending: list[_Pending]) -> list[Finding]:
    directives = parse_directives(migration.comments)
    findings = []
    for item in pending:
        directive = next((d for d in directives if d.covers(item.rule.id, item.span)), None)
        findings.append(_finding(migration, item, None if directive is None else directive.reason))
    for directive in directives:
        if directive.problems:
            comment = directive.comment
            item = _Pending(
                INVALID_SUPPRESSION,
                Span(comment.line, comment.line),
                comment.text,
                "suppression " + "; ".join(directive.problems),
                INVALID_SUPPRESSION.severity,
            )
            findings.append(_finding(migration, item, None))
    return findings


def _finding(migration: Migration, item: _Pending, reason: str | None) -> Finding:
    return Finding(
        rule=item.rule.id,
        name=item.rule.name,
        severity=item.severity,
        file=migration.path,
        line=item.span.line,
        statement=" ".join(item.statement.split()),
        message=item.message,
        why=item.rule.why,
        fix=item.rule.fix,
        dialect=migration.dialect,
        suppressed=reason is not None,
        suppression_reason=reason,
    )
