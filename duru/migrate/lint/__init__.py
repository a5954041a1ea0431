"""The migration linter: find dangerous SQL in migrations before it runs.

    report = lint_paths([Path("migrations")])
    print(report.render_text())        # or json.dumps(report.to_json())
    report.raise_for_errors()          # LintFailed when an error-severity finding is active

What it reads
    `.sql` files, and SQL inside string literals of `.py` (via `tokenize`), `.dart`,
    `.ts`, `.kt` and `.swift` files (a small scanner per language: escapes, raw
    strings, multi-line strings, template literals and interpolation). A host
    string counts as SQL when it starts with a statement keyword
    (`sources.detect`). Line numbers point at each statement's line in the file.

Operations
    A migration declared as operations (`duru.migrate.ops`) is judged by the
    operation objects themselves, under the same rules (`lint.operations`, which
    both databases' plans call); only its raw SQL is read as SQL.

What a migration is
    A `.sql` file is one migration. In a host-language file, all its SQL strings
    together are one migration, in source order: the copy in one string and the
    DROP in the next are seen together.

Dialect
    `dialect=` forces one. Otherwise per file: a path containing ``postgres``,
    ``supabase`` or ``server`` means PostgreSQL; so does PostgreSQL-only syntax
    (``CONCURRENTLY``, ``NOT VALID``, ``ALTER COLUMN``, ``$$``, ``::``, ...);
    anything else is SQLite. Each file's dialect and the reason are in the report.

Parsers
    PostgreSQL statements are parsed by pglast (PostgreSQL's own parser). SQLite
    statements are compiled by SQLite itself for syntax (never run) and read
    with sqlglot for structure. A statement that does not parse is a DURU001
    warning, never a crash.

Backups (DURU104)
    A DROP TABLE counts as backed up when earlier in the same migration there is
    ``VACUUM INTO`` (outside a transaction), an unfiltered ``CREATE TABLE ... AS
    SELECT ... FROM`` that table, or a comment containing ``duru: backup verified``.

Suppressions
    ``-- duru: allow DURU104 because <reason>`` (or ``#`` / ``//`` in host code)
    on the statement's line or the line before; see `suppress`. Suppressed
    findings stay in the report, marked, and do not fail the run.

Rules
    `RULES` lists every rule with its id, name, severity, dialects, why and fix.
"""

from __future__ import annotations

from duru.migrate.lint.engine import collect_files, lint_paths, lint_source
from duru.migrate.lint.report import FileSummary, Finding, LintReport
from duru.migrate.lint.rules import RULES, RULES_BY_ID, Rule

__all__ = [
    "FileSummary",
    "Finding",
    "LintReport",
    "RULES",
    "RULES_BY_ID",
    "Rule",
    "collect_files",
    "lint_paths",
    "lint_source",
]
