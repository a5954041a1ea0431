"""Run the linter over files: load each folder, check every file, suppress, report."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from duru.errors import NotFound, UsageError
from duru.migrate.lint.context import folder_context
from duru.migrate.lint.dialect import settle_by_folder
from duru.migrate.lint.loading import (
    LoadedFile,
    Pending,
    first_choice,
    parse_file,
    scan_file,
    span_of,
)
from duru.migrate.lint.migration import Migration
from duru.migrate.lint.report import FileSummary, Finding, LintReport
from duru.migrate.lint.rules import INVALID_SUPPRESSION, RULES, Check, RunContext
from duru.migrate.lint.settings import LintSettings
from duru.migrate.lint.sources import SUPPORTED_SUFFIXES, show_placeholders
from duru.migrate.lint.sqlite_reader import SqliteReader
from duru.migrate.lint.sqltext import Dialect
from duru.migrate.lint.suppress import Span, parse_directives
from duru.migrate.lint.timeline import Timeline

_SKIPPED_FOLDERS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class _Checked:
    file: LoadedFile
    context: RunContext


def lint_paths(
    paths: Sequence[Path],
    *,
    dialect: Dialect | None = None,
    settings: LintSettings | None = None,
) -> LintReport:
    """Lint every supported file in `paths` (files, or folders searched recursively).

    Each file is checked together with the other files of its own folder (see
    `duru.migrate.lint.context`), so its findings do not depend on what else is
    linted. `dialect` (or `settings.dialect`) forces one dialect for all files;
    otherwise each file's is guessed (see `duru.migrate.lint.dialect`). Folders
    skip hidden folders, node_modules and __pycache__. Raises NotFound for a
    missing path and UsageError for a file whose suffix is not supported.
    """
    settings = _merged(settings, dialect)
    with SqliteReader() as sqlite:
        folders = _Folders(settings, sqlite)
        checked = [folders.checked(path) for path in collect_files(paths)]
    return _report(checked, settings)


def lint_source(
    text: str,
    path: Path,
    *,
    dialect: Dialect | None = None,
    settings: LintSettings | None = None,
) -> LintReport:
    """Lint `text` as if it were the content of the file `path` (which need not exist).

    No folder is consulted: the text is checked on its own.
    """
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UsageError(f"cannot lint {path}: unsupported file type")
    settings = _merged(settings, dialect)
    scanned = scan_file(path, text)
    with SqliteReader() as sqlite:
        loaded = parse_file(scanned, first_choice(scanned, settings.dialect), sqlite)
    return _report([_Checked(loaded, RunContext())], settings)


def _merged(settings: LintSettings | None, dialect: Dialect | None) -> LintSettings:
    settings = settings or LintSettings()
    if dialect is None:
        return settings
    return LintSettings(
        dialect, settings.pg_version, settings.assume_in_transaction, settings.exclude
    )


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
        files.extend(Path(root) / name for name in sorted(names) if _supported(name))
    return files


def _supported(name: str) -> bool:
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES


class _Folders:
    """Loads each folder once; a file is checked with its folder's other files as context."""

    def __init__(self, settings: LintSettings, sqlite: SqliteReader) -> None:
        self._settings = settings
        self._sqlite = sqlite
        self._folders: dict[Path, tuple[dict[Path, int], list[LoadedFile]]] = {}

    def checked(self, path: Path) -> _Checked:
        positions, files = self._folder(path.parent)
        position = positions.get(path.resolve())
        if position is None:
            # A file the folder listing does not show (a link, say): checked on its own.
            positions, files = self._load([path])
            position = 0
        context = folder_context([file.migration for file in files], position)
        return _Checked(files[position], context)

    def _folder(self, folder: Path) -> tuple[dict[Path, int], list[LoadedFile]]:
        key = folder.resolve()
        if key not in self._folders:
            names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
            self._folders[key] = self._load([folder / name for name in names if _supported(name)])
        return self._folders[key]

    def _load(self, paths: list[Path]) -> tuple[dict[Path, int], list[LoadedFile]]:
        scanned = [scan_file(path) for path in paths]
        choices = [first_choice(file, self._settings.dialect) for file in scanned]
        choices = settle_by_folder(paths, choices)
        files = [parse_file(s, c, self._sqlite) for s, c in zip(scanned, choices, strict=True)]
        return {path.resolve(): index for index, path in enumerate(paths)}, files


def _report(checked: list[_Checked], settings: LintSettings) -> LintReport:
    findings: list[Finding] = []
    for item in checked:
        migration = item.file.migration
        check = Check(
            migration,
            Timeline(migration, assume_in_transaction=_wrapped(migration, settings)),
            item.context,
            settings,
        )
        pending = item.file.problems + _rule_hits(check)
        pending = [p for p in pending if p.rule.id not in settings.exclude]
        findings.extend(_apply_suppressions(item.file, pending))
    findings.sort(key=lambda finding: (finding.file, finding.line, finding.rule))
    return LintReport(findings, [_summary(item) for item in checked])


def _wrapped(migration: Migration, settings: LintSettings) -> bool:
    # Runners wrap .sql files; in host code the code itself decides where transactions are.
    # A file of one statement runs as that statement alone, where PostgreSQL accepts
    # CONCURRENTLY: Supabase's advice for it (supabase/cli#2898).
    sql_file = migration.path.lower().endswith(".sql")
    return settings.assume_in_transaction and sql_file and len(migration.statements) > 1


def _summary(item: _Checked) -> FileSummary:
    file = item.file
    return FileSummary(
        file.migration.path,
        file.choice.dialect,
        file.choice.reason,
        len(file.migration.statements),
        file.not_understood,
        runtime_built=file.runtime_built,
        context_files=item.context.files,
    )


def _rule_hits(check: Check) -> list[Pending]:
    pending = []
    for rule in RULES:
        if rule.check is None or check.migration.dialect not in rule.dialects:
            continue
        if rule.id in check.settings.exclude:
            continue
        for hit in rule.check(check):
            pending.append(
                Pending(
                    rule,
                    span_of(hit.statement),
                    hit.statement.text,
                    hit.message,
                    hit.severity or rule.severity,
                )
            )
    return pending


def _apply_suppressions(file: LoadedFile, pending: list[Pending]) -> list[Finding]:
    migration = file.migration
    directives = parse_directives(migration.comments)
    findings = []
    for item in pending:
        directive = next((d for d in directives if d.covers(item.rule.id, item.span)), None)
        reason = None if directive is None else directive.reason
        findings.append(_finding(file, item, reason))
    for directive in directives:
        if directive.problems:
            comment = directive.comment
            item = Pending(
                INVALID_SUPPRESSION,
                Span(comment.line, comment.line),
                comment.text,
                "suppression " + "; ".join(directive.problems),
                INVALID_SUPPRESSION.severity,
            )
            findings.append(_finding(file, item, None))
    return findings


def _finding(file: LoadedFile, item: Pending, reason: str | None) -> Finding:
    migration: Migration = file.migration
    shown = file.placeholders
    return Finding(
        rule=item.rule.id,
        name=item.rule.name,
        severity=item.severity,
        file=migration.path,
        line=item.span.line,
        statement=show_placeholders(" ".join(item.statement.split()), shown),
        message=show_placeholders(item.message, shown),
        why=item.rule.why,
        fix=item.rule.fix,
        dialect=migration.dialect,
        suppressed=reason is not None,
        suppression_reason=reason,
        column=item.span.column,
        end_line=item.span.end_line,
        end_column=item.span.end_column,
    )
