"""`duru migrate ...`: lint migrations, plan, run, resume, inspect and roll back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from duru.cli.app import EXIT_FAILED, app, reported
from duru.cli.output import print_json

migrate_app = typer.Typer(
    help="Safe migrations: lint, plan, phased chunked runs with audit, rollback and resume."
)
app.add_typer(migrate_app, name="migrate")


@migrate_app.command("lint")
def lint(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders: .sql, and SQL in .py, .dart, .ts, .kt and .swift strings."
        ),
    ],
    output: Annotated[str, typer.Option("--format", help="Output: text or json.")] = "text",
    dialect: Annotated[
        str | None,
        typer.Option("--dialect", help="sqlite or postgres (default: guessed per file)."),
    ] = None,
) -> None:
    """Find dangerous migration SQL; exit non-zero on any error-severity finding."""
    from duru.errors import UsageError
    from duru.migrate.lint import lint_paths

    with reported():
        if output not in ("text", "json"):
            raise UsageError(f"--format must be text or json, not {output!r}")
        if dialect not in (None, "sqlite", "postgres"):
            raise UsageError(f"--dialect must be sqlite or postgres, not {dialect!r}")
        chosen: Literal["sqlite", "postgres"] | None = dialect  # type: ignore[assignment]
        report = lint_paths(paths, dialect=chosen)
    if output == "json":
        print_json(report.to_json())
    else:
        typer.echo(report.render_text())
    if report.has_errors:
        raise typer.Exit(EXIT_FAILED)
