"""`duru init`, `duru import` and `duru export`: making, filling and backing up a database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import DbOption, app, reported, resolve_db
from duru.cli.device import JsonOption, device
from duru.cli.output import print_json, progress_bar
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.local.legacy import ImportReport


@app.command("init")
def init(db: Path | None = DbOption) -> None:
    """Make an empty device database (an existing one is checked and left as it is)."""
    from duru.local import SCHEMA_VERSION

    with device(db, create=True) as store:
        device_id = store.db.meta("device_id")
        typer.echo(f"device database {store.path} (schema {SCHEMA_VERSION}, device {device_id})")


LegacyArg = typer.Argument(
    ..., help="The app's version 11 database file (opened read-only, never changed)."
)
TargetOption = typer.Option(
    None,
    "--db",
    help="The new device database to make (default: $DURU_DB, else duru.sqlite in the"
    " user data folder); it must not exist yet.",
)
OutOption = typer.Option(
    None,
    "--out",
    "-o",
    help="Write the backup to this file (atomically: a temporary file beside it, then a"
    " rename); '-' or none: standard output. Never the database itself, a link, a folder"
    " or a device.",
)
ForceOption = typer.Option(False, "--force", help="Replace an existing --out file without asking.")


@app.command("import")
def import_(
    legacy: Path = LegacyArg,
    db: Path | None = TargetOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a legacy app database; every row is imported, merged or quarantined.

    Prints, per table, the rows read, imported, merged and quarantined, and fails
    unless read = imported + merged + quarantined for every table.
    """
    # Imported here: the importer is big, and only this command needs it.
    from duru.local.legacy import import_legacy

    target = resolve_db(db)
    with reported():
        target.parent.mkdir(parents=True, exist_ok=True)
        with progress_bar() as progress:
            report = import_legacy(legacy, target, progress=progress)
        if as_json:
            typer.echo(report.to_json())
        else:
            _print_report(report)
        report.check()


@app.command("export")
def export(
    fmt: str = typer.Option("json", "--format", help="The backup format (json)."),
    out: str | None = OutOption,
    force: bool = ForceOption,
    db: Path | None = DbOption,
) -> None:
    """Export every table (and the quarantine) as one JSON object keyed by table name.

    The object also records the model fingerprint under "duru_export", which
    `duru restore` checks.
    """
    from duru.local import export_json, write_export
    from duru.local.export import check_export_target

    with device(db) as store:
        if fmt != "json":
            raise UsageError(f"--format {fmt!r} is not supported (json is)")
        if out is None or out == "-":
            typer.echo(export_json(store.db, indent=2))
            return
        target = Path(out)
        replace = check_export_target(store.db, target) and _may_replace(target, force)
        counts = write_export(store.db, target, replace=replace)
    typer.echo(f"wrote {sum(counts.values())} rows of {len(counts)} tables to {target}")


ExportArg = typer.Argument(..., help="A backup written by `duru export` (JSON).")


@app.command("restore")
def restore(
    backup: Path = ExportArg,
    db: Path | None = TargetOption,
    as_json: bool = JsonOption,
) -> None:
    """Restore a `duru export` backup into a new device database; every row is counted.

    The backup must come from this model (its fingerprint is checked); the
    database is named only when complete, so a failed restore leaves none.
    """
    from duru.local.restore import restore_export

    target = resolve_db(db)
    with reported():
        target.parent.mkdir(parents=True, exist_ok=True)
        report = restore_export(backup, target)
    if as_json:
        print_json(report.to_dict())
        return
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"restored {sum(report.rows.values())} rows from {backup} into {target}")


def _may_replace(target: Path, force: bool) -> bool:
    """True to replace the existing file ``target``: --force, or a yes at a terminal.

    Without a terminal to ask at (a script, a pipe), only --force replaces it.
    """
    if force:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{target} already exists: give --force to replace it")
    if typer.confirm(f"{target} already exists. Replace it?", default=False, err=True):
        return True
    raise UsageError(f"{target} already exists: not replaced")


def _print_report(report: ImportReport) -> None:
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"imported {report.source} into {report.target} in {report.seconds:.2f} s")
