"""What a lint run assumes about the database and which rules it runs.

`LintSettings` is built by the caller (the CLI merges its flags over the
repository's config file, see `duru.migrate.lint.config`). Every field has the
default a plain `lint_paths(paths)` call uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duru.migrate.lint.sqltext import Dialect

# The oldest PostgreSQL still supported upstream when this was written; the rules that
# depend on the version (instant defaults, SET NOT NULL from a check, CONCURRENTLY forms)
# assume it unless told otherwise.
DEFAULT_PG_VERSION = 13


@dataclass(frozen=True)
class LintSettings:
    """Options of one lint run.

    `dialect` forces one dialect for every file (None: guessed per file).
    `pg_version` is the server's major version. `assume_in_transaction` says that
    the runner wraps each file in one transaction (Supabase and most migration
    tools do), so a statement outside any BEGIN still runs inside one; it applies
    to `.sql` files only, since host code places its own transactions.
    `exclude` holds rule ids that are not run at all.
    """

    dialect: Dialect | None = None
    pg_version: int = DEFAULT_PG_VERSION
    assume_in_transaction: bool = False
    exclude: frozenset[str] = field(default_factory=frozenset)
