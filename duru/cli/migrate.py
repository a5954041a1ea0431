"""`duru migrate ...`: lint migrations, plan, run, resume, inspect and roll back."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, cast

import typer

from duru.cli.app import EXIT_FAILED, app, reported, resolve_db
from duru.cli.output import ProgressCallback, print_json, print_rows, progress_bar

if TYPE_CHECKING:
    from duru.migrate.progress import ProgressEvent

migrate_app = typer.Typer(
    help="Safe migrations: lint, plan, phased chunked runs with audit, rollback and resume."
)
app.add_typer(migrate_app, name="migrate")


_LINT_FORMATS = ("text", "json", "github", "sarif")


@migrate_app.command("lint")
def lint(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders: .sql, and SQL in .py, .dart, .ts, .kt and .swift strings."
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--format",
            help="text (why/fix once per rule), json, github (Actions annotations) or sarif.",
        ),
    ] = "text",
    dialect: Annotated[
        str | None,
        typer.Option("--dialect", help="sqlite or postgres (default: guessed per file)."),
    ] = None,
    pg_version: Annotated[
        int | None,
        typer.Option("--pg-version", help="The server's PostgreSQL major version (default 13)."),
    ] = None,
    in_transaction: Annotated[
        bool | None,
        typer.Option(
            "--assume-in-transaction/--no-assume-in-transaction",
            help="The runner wraps each file in one transaction (Supabase does).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="A rule id or name not to run (repeatable)."),
    ] = None,
) -> None:
    """Find dangerous migration SQL; exit non-zero on any error-severity finding.

    Settings also come from duru.toml ([lint]) or pyproject.toml ([tool.duru.lint])
    in the current folder or above; flags override them.
    """
    from duru.errors import UsageError
    from duru.migrate.lint import lint_paths
    from duru.migrate.lint.config import find_config, rule_ids
    from duru.migrate.lint.settings import LintSettings

    with reported():
        if output not in _LINT_FORMATS:
            raise UsageError(f"--format must be {', '.join(_LINT_FORMATS)}, not {output!r}")
        if dialect not in (None, "sqlite", "postgres"):
            raise UsageError(f"--dialect must be sqlite or postgres, not {dialect!r}")
        base = find_config(Path.cwd()).settings
        settings = LintSettings(
            dialect=cast(Literal["sqlite", "postgres"] | None, dialect) or base.dialect,
            pg_version=base.pg_version if pg_version is None else pg_version,
            assume_in_transaction=(
                base.assume_in_transaction if in_transaction is None else in_transaction
            ),
            exclude=base.exclude | rule_ids(exclude or [], "--exclude"),
        )
        report = lint_paths(paths, settings=settings)
    _print_lint(report, output)
    if report.has_errors:
        raise typer.Exit(EXIT_FAILED)


def _print_lint(report: Any, output: str) -> None:
    from duru.migrate.lint.report_formats import render_github, to_sarif

    if output == "json":
        print_json(report.to_json())
    elif output == "sarif":
        print_json(to_sarif(report))
    elif output == "github":
        typer.echo(render_github(report), nl=False)
    else:
        typer.echo(report.render_text())


DbTarget = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Device database to migrate (default: $DURU_DB, else the user data folder);"
        " a legacy app file (version 11) is upgraded in place.",
    ),
]
ServerTarget = Annotated[
    str | None,
    typer.Option("--server", help="Migrate this server database (PostgreSQL URL) instead."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@migrate_app.command("plan")
def plan(db: DbTarget = None, server: ServerTarget = None, as_json: JsonFlag = False) -> None:
    """Show what a run would do: phases, steps and row estimates; changes nothing."""
    from duru import migrate
    from duru.migrate import postgres

    with reported():
        result = postgres.server_plan(server) if server else migrate.plan(resolve_db(db))
    _show(result, as_json)


@migrate_app.command("run")
def run(
    db: DbTarget = None,
    server: ServerTarget = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and plan against the file; change nothing.")
    ] = False,
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            help="Server runs: an account whose rows the run may re-encrypt; its passphrase"
            " comes from $DURU_PASSPHRASE (repeat --user for accounts sharing it).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring a database to this duru's schema: backup, preflight, chunked copy, audit, cleanup."""
    from duru import migrate
    from duru.migrate import postgres

    with reported(), progress_bar() as bar:
        progress = None if bar is None else _events_to(bar)
        if server:
            result: object = postgres.server_run(
                server, passphrases=_passphrases(user), progress=progress
            )
        else:
            result = migrate.run(resolve_db(db), dry_run=dry_run, progress=progress)
    _show(result, as_json)


@migrate_app.command("resume")
def resume(db: DbTarget = None, as_json: JsonFlag = False) -> None:
    """Continue an interrupted run (killed, crashed, paused) from its last rollback point."""
    from duru import migrate

    with reported(), progress_bar() as bar:
        progress = None if bar is None else _events_to(bar)
        result = migrate.resume(resolve_db(db), progress=progress)
    _show(result, as_json)


@migrate_app.command("status")
def status(db: DbTarget = None, server: ServerTarget = None, as_json: JsonFlag = False) -> None:
    """Show the schema version, pending migrations, an unfinished run and its rollback points."""
    from duru import migrate
    from duru.migrate import postgres

    with reported():
        result = postgres.server_status(server) if server else migrate.status(resolve_db(db))
    _show(result, as_json)


@migrate_app.command("history")
def history(db: DbTarget = None, server: ServerTarget = None, as_json: JsonFlag = False) -> None:
    """Show every run and its audit trail: phase, step, start, end, rows, status, error."""
    from duru import migrate
    from duru.migrate import postgres

    with reported():
        rows = (
            postgres.server_history(server)
            if server
            else [row for run in migrate.history(resolve_db(db)) for row in run.rows]
        )
    audit = [r.to_json() for r in rows]
    print_rows(audit, _AUDIT_COLUMNS, title="migration audit", as_json=as_json)


@migrate_app.command("rollback")
def rollback(
    db: DbTarget = None,
    server: ServerTarget = None,
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            help="Rollback point id (see `duru migrate status`, or `history --server`);"
            " default: the run's start. A server run rolled back to a point resumes with `run`.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Return a database to a rollback point in one command."""
    from duru import migrate
    from duru.migrate import postgres

    with reported():
        if server:
            result: object = postgres.server_rollback(server, to=to)
        else:
            result = migrate.rollback(resolve_db(db), to)
    _show(result, as_json)


_AUDIT_COLUMNS = ("id", "phase", "step", "started_at", "ended_at", "rows", "status", "error")


class _Shown(Protocol):
    def render(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def _show(result: object, as_json: bool) -> None:
    shown = cast(_Shown, result)
    if as_json:
        print_json(shown.to_json())
    else:
        typer.echo(shown.render())


def _events_to(bar: ProgressCallback) -> Callable[[ProgressEvent], None]:
    """Feed the engine's progress events to a progress bar (one bar per step)."""

    def on_event(event: ProgressEvent) -> None:
        total = event.total if event.total is not None else max(event.done, 1)
        done = total if event.kind == "end" else event.done
        bar(event.title, done, total)

    return on_event


def _passphrases(users: list[str] | None) -> dict[str, str] | None:
    if not users:
        return None
    secret = os.environ.get("DURU_PASSPHRASE")
    if secret is None:
        from duru.errors import UsageError

        raise UsageError("--user needs the account's passphrase in $DURU_PASSPHRASE")
    return dict.fromkeys(users, secret)
