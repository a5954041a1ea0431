"""The migration engine: lint, plan, phased runner, audit, rollback.

The linter (`duru.migrate.lint`) reads migrations and reports dangerous SQL.
"""

from __future__ import annotations

from duru.migrate.lint import Finding, LintReport, lint_paths

__all__ = ["Finding", "LintReport", "lint_paths"]
