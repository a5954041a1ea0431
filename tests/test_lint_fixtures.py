"""A realistic mixed migration history: the linter reports exactly the true findings on it.

tests/lint_fixtures/realistic holds an app's migrations as they accumulate: Supabase
SQL files, alembic and psycopg migrations in Python, drift and sqflite upgrades in
Dart, and a desktop tool's SQLite steps, safe and risky mixed. realistic.expected
lists every finding, each with the reason it is true; a finding on a file the
manifest does not name is a false positive.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from duru.migrate.lint import lint_paths
from duru.migrate.lint.settings import LintSettings

FIXTURES = Path(__file__).parent / "lint_fixtures"
REALISTIC = FIXTURES / "realistic"
MANIFEST = FIXTURES / "realistic.expected"
# Supabase runs PostgreSQL 15.
SETTINGS = {
    "wrapped": LintSettings(assume_in_transaction=True, pg_version=15),
    "bare": LintSettings(assume_in_transaction=False, pg_version=15),
}
_ENTRY = re.compile(r"(DURU\d{3}) (\S+):(\d+) (both|wrapped|bare|suppressed)")

Finding = tuple[str, str, int]


def _manifest() -> list[tuple[Finding, str]]:
    entries = []
    justified = False
    for number, line in enumerate(MANIFEST.read_text().splitlines(), start=1):
        if line.startswith("#"):
            justified = True
        elif line.strip():
            match = _ENTRY.fullmatch(line.strip())
            assert match, f"realistic.expected:{number}: cannot read {line!r}"
            assert justified, f"realistic.expected:{number}: no comment says why it is true"
            rule, path, at, mode = match.groups()
            entries.append(((rule, path, int(at)), mode))
        else:
            justified = False
    return entries


def _expected(mode: str) -> set[Finding]:
    return {finding for finding, when in _manifest() if when in ("both", mode)}


def _relative(path: str) -> str:
    return Path(path).relative_to(REALISTIC).as_posix()


@pytest.mark.parametrize("mode", ["wrapped", "bare"])
def test_realistic_folder_has_exactly_the_true_findings(mode: str) -> None:
    report = lint_paths([REALISTIC], settings=SETTINGS[mode])
    found = {(f.rule, _relative(f.file), f.line) for f in report.active}
    expected = _expected(mode)
    risky = {path for (_, path, _), _ in _manifest()}
    on_safe_files = sorted(f for f in found if f[1] not in risky)
    assert on_safe_files == [], "findings on safe files (false positives)"
    assert sorted(found - expected) == [], "findings the manifest does not justify"
    assert sorted(expected - found) == [], "true findings the linter missed"


@pytest.mark.parametrize("mode", ["wrapped", "bare"])
def test_reasoned_suppressions_hold(mode: str) -> None:
    report = lint_paths([REALISTIC], settings=SETTINGS[mode])
    silenced = {(f.rule, _relative(f.file), f.line) for f in report.findings if f.suppressed}
    assert silenced == {finding for finding, when in _manifest() if when == "suppressed"}


def test_every_file_is_read_in_its_dialect_and_parses() -> None:
    report = lint_paths([REALISTIC], settings=SETTINGS["wrapped"])
    dialects = {_relative(s.path): s.dialect for s in report.files}
    on_disk = sorted(p for p in REALISTIC.rglob("*") if p.suffix in {".sql", ".py", ".dart"})
    assert sorted(dialects) == [_relative(str(p)) for p in on_disk]
    postgres = ("supabase/", "server/", "services/")
    for path, dialect in dialects.items():
        assert dialect == ("postgres" if path.startswith(postgres) else "sqlite"), path
    assert [f for f in report.findings if f.rule == "DURU001"] == []
    assert all(s.runtime_built == 0 for s in report.files)


def test_manifest_names_only_files_that_exist() -> None:
    for (_, path, line), _ in _manifest():
        lines = (REALISTIC / path).read_text().splitlines()
        assert 1 <= line <= len(lines), (path, line)
