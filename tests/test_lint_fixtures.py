"""A realistic mixed migration folder: every finding on it is one a reviewer would agree with."""

from __future__ import annotations

from pathlib import Path

import pytest

from duru.migrate.lint import lint_paths
from duru.migrate.lint.settings import LintSettings

REALISTIC = Path(__file__).parent / "lint_fixtures" / "realistic"
INITIAL = "supabase/migrations/20240101000000_notes.sql"


@pytest.mark.parametrize("wrapped", [False, True])
def test_realistic_folder_has_only_true_findings(wrapped: bool) -> None:
    report = lint_paths([REALISTIC], settings=LintSettings(assume_in_transaction=wrapped))
    found = sorted(
        (str(Path(f.file).relative_to(REALISTIC)), f.line, f.rule) for f in report.active
    )
    # True: the foreign key to auth.users (an existing, busy table) locks it against writes
    # while the table is created, and the file sets no timeouts before it.
    assert found == [(INITIAL, 4, "DURU208"), (INITIAL, 4, "DURU221")]
    dialects = {str(Path(s.path).relative_to(REALISTIC)): s.dialect for s in report.files}
    assert dialects["app/lib/db/migrations.dart"] == "sqlite"
    assert dialects["server/migrations/m0007_tags.py"] == "postgres"
    assert all(s.not_understood == 0 for s in report.files)
