"""`duru schema check`: compare live databases with the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from duru.cli.app import EXIT_FAILED, app, reported
from duru.cli.output import print_json
from duru.errors import UsageError

schema_app = typer.Typer(help="The schemas derived from the model, and checks of live databases.")
app.add_typer(schema_app, name="schema")


@schema_app.command("check")
def check(
    local: Annotated[
        Path | None,
        typer.Option("--local", help="A device database file (SQLite) to compare with the model."),
    ] = None,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            help="A server database URL to compare with the model (default: $DURU_DATABASE_URL).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List every difference between live databases and the model; exit 0 only if compatible."""
    from duru.schemacheck import check_schema

    remote = remote or os.environ.get("DURU_DATABASE_URL") or None
    with reported():
        if local is None and remote is None:
            raise UsageError("give --local PATH, --remote URL, or both")
        report = check_schema(local, remote)
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(report.render_text())
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
