"""Findings and the report the CLI prints (text) or emits (JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from duru.errors import LintFailed
from duru.migrate.lint.rules import Severity
from duru.migrate.lint.sqltext import Dialect

JSON_VERSION = 1
_TEXT_STATEMENT_WIDTH = 100


@dataclass(frozen=True)
class Finding:
    """One dangerous statement: which rule, where, why it is dangerous and what to do instead.

    `statement` is the statement as written with its whitespace collapsed. `line`
    to `end_line` are the statement's lines; `column` and `end_column` (1-based,
    inclusive) are set for `.sql` files, where the text is the source itself.
    `suppressed` findings stay in the report (with the reason) but never count as
    errors or warnings.
    """

    rule: str
    name: str
    severity: Severity
    file: str
    line: int
    statement: str
    message: str
    why: str
    fix: str
    dialect: Dialect
    suppressed: bool = False
    suppression_reason: str | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileSummary:
    """How one file was read: its dialect and why, and how many statements it held.

    `not_understood` counts valid statements the fact reader has no model of, of
    which `runtime_built` are host strings whose SQL is only complete at run time.
    `context_files` counts the other files of its folder that informed the checks.
    """

    path: str
    dialect: Dialect
    dialect_reason: str
    statements: int
    not_understood: int = 0
    runtime_built: int = 0
    context_files: int = 0


@dataclass(frozen=True)
class LintReport:
    """The findings of one lint run, sorted by file, line and rule."""

    findings: list[Finding] = field(default_factory=list)
    files: list[FileSummary] = field(default_factory=list)

    @property
    def active(self) -> list[Finding]:
        """Findings that are not suppressed."""
        return [finding for finding in self.findings if not finding.suppressed]

    @property
    def has_errors(self) -> bool:
        """True when an unsuppressed error-severity finding exists (the CLI then fails)."""
        return any(finding.severity == "error" for finding in self.active)

    def counts(self) -> dict[str, int]:
        active = self.active
        return {
            "files": len(self.files),
            "statements": sum(summary.statements for summary in self.files),
            "errors": sum(finding.severity == "error" for finding in active),
            "warnings": sum(finding.severity == "warning" for finding in active),
            "suppressed": len(self.findings) - len(active),
        }

    def raise_for_errors(self) -> None:
        """Raise LintFailed when `has_errors`."""
        if self.has_errors:
            counts = self.counts()
            raise LintFailed(
                f"migration lint found {counts['errors']} error(s) in {counts['files']} file(s)"
            )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: version, has_errors, summary, files, findings."""
        return {
            "version": JSON_VERSION,
            "has_errors": self.has_errors,
            "summary": self.counts(),
            "files": [asdict(summary) for summary in self.files],
            "findings": [finding.to_json() for finding in self.findings],
        }

    def render_text(self) -> str:
        """Human-readable report: one block per active finding, then why and fix once per
        rule that fired, suppressions, how files were read, and a summary line."""
        blocks = [_text_block(finding) for finding in self.active]
        if self.active:
            blocks.append(_rule_notes(self.active))
        suppressed = [finding for finding in self.findings if finding.suppressed]
        if suppressed:
            blocks.append("\n".join(_suppressed_line(finding) for finding in suppressed))
        blocks.append(self.render_dialects())
        counts = self.counts()
        blocks.append(
            f"{counts['errors']} error(s), {counts['warnings']} warning(s), "
            f"{counts['suppressed']} suppressed in {counts['files']} file(s) "
            f"({counts['statements']} statement(s))"
        )
        return "\n\n".join(blocks) + "\n"

    def render_dialects(self) -> str:
        """How the files were read: per dialect and evidence, naming the files only guessed."""
        groups: dict[tuple[str, str], list[str]] = {}
        for summary in self.files:
            groups.setdefault((summary.dialect, summary.dialect_reason), []).append(summary.path)
        lines = []
        for (dialect, reason), paths in sorted(groups.items()):
            lines.append(
                f"read as {dialect} ({_REASONS.get(reason, reason)}): {len(paths)} file(s)"
            )
            if reason == "default":
                lines.extend(f"    {path}" for path in paths)
        built = sum(summary.runtime_built for summary in self.files)
        if built:
            lines.append(
                f"{built} statement(s) built from interpolated fragments at run time: not checked"
            )
        return "\n".join(lines)


_REASONS = {
    "flag": "as told",
    "path": "folder or file name",
    "syntax": "dialect-only syntax in the file",
    "folder": "other files of its kind in its folder",
    "default": "no evidence either way; a guess, say --dialect if it is wrong",
}


def _text_block(finding: Finding) -> str:
    column = f"{finding.column}:" if finding.column is not None else ""
    lines = [
        f"{finding.file}:{finding.line}:{column} {finding.rule} {finding.severity} {finding.name}"
    ]
    if finding.statement:
        lines.append(f"    {_shorten(finding.statement)}")
    lines.append(f"    {finding.message}")
    return "\n".join(lines)


def _rule_notes(findings: list[Finding]) -> str:
    """Why and fix, once for each rule among `findings`, in rule order."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.rule, finding)
    notes = []
    for rule in sorted(seen):
        finding = seen[rule]
        notes.append(f"{rule} {finding.name}\n    why: {finding.why}\n    fix: {finding.fix}")
    return "\n".join(notes)


def _suppressed_line(finding: Finding) -> str:
    return (
        f"{finding.file}:{finding.line}: {finding.rule} suppressed "
        f"because {finding.suppression_reason}"
    )


def _shorten(statement: str) -> str:
    if len(statement) <= _TEXT_STATEMENT_WIDTH:
        return statement
    return statement[: _TEXT_STATEMENT_WIDTH - 3] + "..."
