"""The lint corpus: every rule has a bad file that triggers it and a good file that does not.

Layout: tests/lint_corpus/<dialect>/{bad,good}/DURUxxx_<what>.<ext>. A bad file
lists the exact set of rules it must trigger in an ``expect:`` comment; a good
file must produce no active finding, and names the rule whose safe alternative
it shows in its file name prefix (more in an optional ``shows:`` comment).
Each file is linted on its own, so that files do not inform each other.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from duru.migrate.lint import RULES, lint_paths

CORPUS = Path(__file__).parent / "lint_corpus"
DIALECTS = ("sqlite", "postgres")
_EXPECT = re.compile(r"expect:[ \t]*((?:DURU\d{3}[ \t]*)+)")
_SHOWS = re.compile(r"shows:[ \t]*((?:DURU\d{3}[ \t]*)+)")


def _files(kind: str) -> list[tuple[str, Path]]:
    return [
        (dialect, path)
        for dialect in DIALECTS
        for path in sorted((CORPUS / dialect / kind).iterdir())
        if path.is_file()
    ]


def _ids(files: list[tuple[str, Path]]) -> list[str]:
    return [f"{dialect}/{path.name}" for dialect, path in files]


BAD = _files("bad")
GOOD = _files("good")


def _expected(path: Path) -> set[str]:
    match = _EXPECT.search(path.read_text())
    assert match, f"{path.name} has no expect: comment"
    return set(match.group(1).split())


def _shown(path: Path) -> set[str]:
    match = _SHOWS.search(path.read_text())
    return {path.name[:7], *(match.group(1).split() if match else ())}


@pytest.mark.parametrize(("dialect", "path"), BAD, ids=_ids(BAD))
def test_bad_file_triggers_exactly_its_rules(dialect: str, path: Path) -> None:
    report = lint_paths([path], dialect=dialect)  # type: ignore[arg-type]
    assert {finding.rule for finding in report.active} == _expected(path)


@pytest.mark.parametrize(("dialect", "path"), GOOD, ids=_ids(GOOD))
def test_good_file_has_no_active_finding(dialect: str, path: Path) -> None:
    report = lint_paths([path], dialect=dialect)  # type: ignore[arg-type]
    assert report.active == [], report.render_text()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_whole_good_corpus_has_no_error(dialect: str) -> None:
    # One run over the folder: files now inform each other (cascade children, column types).
    report = lint_paths([CORPUS / dialect / "good"], dialect=dialect)  # type: ignore[arg-type]
    errors = [finding for finding in report.active if finding.severity == "error"]
    assert errors == []
    assert not report.has_errors
    assert report.counts()["files"] == len(list((CORPUS / dialect / "good").iterdir()))


def test_every_rule_has_a_bad_and_a_good_example() -> None:
    triggered = set().union(*(_expected(path) for _, path in BAD))
    shown = set().union(*(_shown(path) for _, path in GOOD))
    rule_ids = {rule.id for rule in RULES}
    assert rule_ids - triggered == set()
    assert rule_ids - shown == set()


def test_every_rule_has_its_own_cases_in_each_of_its_dialects() -> None:
    # A bad file that triggers it and a good file named for it, per dialect the rule covers.
    missing = []
    for rule in RULES:
        for dialect in sorted(rule.dialects):
            bad = [p for d, p in BAD if d == dialect and rule.id in _expected(p)]
            good = [p for d, p in GOOD if d == dialect and p.name.startswith(rule.id)]
            missing += [f"{rule.id} {dialect} bad"] if not bad else []
            missing += [f"{rule.id} {dialect} good"] if not good else []
    assert missing == []


def test_corpus_covers_every_host_language() -> None:
    suffixes = {path.suffix for _, path in BAD + GOOD}
    assert {".sql", ".py", ".dart", ".ts", ".kt", ".swift"} <= suffixes


@pytest.mark.parametrize(("dialect", "path"), BAD, ids=_ids(BAD))
def test_findings_point_at_the_statement_line(dialect: str, path: Path) -> None:
    lines = path.read_text().split("\n")
    report = lint_paths([path], dialect=dialect)  # type: ignore[arg-type]
    for finding in report.findings:
        first_word = finding.statement.split()[0].lower()
        assert first_word in lines[finding.line - 1].lower(), (finding.rule, finding.line)


def test_migration_12_pattern_fails_once_per_table() -> None:
    path = CORPUS / "sqlite" / "bad" / "DURU105_m12_seven_tables.dart"
    report = lint_paths([path], dialect="sqlite")
    counts = Counter(finding.rule for finding in report.active)
    assert report.has_errors
    assert counts == {
        "DURU101": 7,
        "DURU102": 7,
        "DURU103": 7,
        "DURU104": 7,
        "DURU108": 7,
        "DURU105": 1,
    }
    tables = ["notes", "note_tags", "note_links", "note_tasks", "note_reminders"]
    tables += ["note_folders", "note_attachments"]
    dropped = [f.statement for f in report.active if f.rule == "DURU104"]
    assert dropped == [f"DROP TABLE {table}" for table in tables]
    (many,) = [f for f in report.active if f.rule == "DURU105"]
    assert "7 tables rebuilt" in many.message


def test_migration_12_first_statement_line() -> None:
    path = CORPUS / "sqlite" / "bad" / "DURU105_m12_seven_tables.dart"
    text = path.read_text().split("\n")
    expected = next(
        number
        for number, line in enumerate(text, start=1)
        if "INSERT OR IGNORE INTO notes_new" in line
    )
    report = lint_paths([path], dialect="sqlite")
    first = next(f for f in report.active if f.rule == "DURU101")
    assert first.line == expected


def test_dialect_is_guessed_from_folder_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative paths, so that the checkout's own location cannot sway the guess.
    monkeypatch.chdir(CORPUS)
    report = lint_paths([Path("sqlite/good"), Path("postgres/good")])
    dialects = {summary.path: (summary.dialect, summary.dialect_reason) for summary in report.files}
    assert dialects["postgres/good/DURU201_index.ts"] == ("postgres", "path")
    assert dialects["sqlite/good/DURU104_backup_table.sql"] == ("sqlite", "folder")
    assert not report.has_errors
