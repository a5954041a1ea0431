"""`duru conflicts`: the versions sync kept aside, and choosing between them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, short
from duru.cli.output import print_json, print_rows, visible

conflicts_app = typer.Typer(
    help="Conflicts: edits that clashed across devices, kept aside so no word is lost.",
    no_args_is_help=True,
)
app.add_typer(conflicts_app, name="conflicts")

IdArg = typer.Argument(..., help="Conflict id: the full id or a unique prefix (4+ characters).")


@conflicts_app.command("list")
def list_command(
    every: Annotated[
        bool, typer.Option("--all", help="Also the merged and resolved ones.")
    ] = False,
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List open conflicts, oldest first."""
    from duru.sync.conflicts import list_conflicts

    with device(db) as store:
        found = list_conflicts(store.db, every=every)
    if as_json:
        print_json([c.to_json() for c in found])
        return
    rows = [
        {
            "id": short(c.id),
            "entity": c.entity,
            "row": short(c.row_id),
            "kind": c.kind,
            "status": c.status,
            "copy": "" if c.copy_id is None else short(c.copy_id),
            "kept aside": _summary(c.row),
        }
        for c in found
    ]
    print_rows(
        rows,
        ("id", "entity", "row", "kind", "status", "copy", "kept aside"),
        title="Conflicts",
        as_json=as_json,
    )


@conflicts_app.command("show")
def show(conflict: str = IdArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Show a conflict: the version kept aside and the row as it is now."""
    from duru.model import entity
    from duru.sync.conflicts import find_conflict

    with device(db) as store:
        c = find_conflict(store.db, conflict)
        now = store.db.find(entity(c.entity), c.row_id)
    if as_json:
        print_json({**c.to_json(), "current": now})
        return
    typer.echo(f"conflict {c.id} ({c.status}): {c.kind} of {c.entity} {c.row_id}")
    typer.echo(f"  from device {c.device_id} at {c.created_at}")
    if c.copy_id:
        typer.echo(f"  conflicted copy: note {c.copy_id}")
    typer.echo("kept aside:" if c.row is not None else "kept aside: the row was deleted")
    for key, value in (c.row or {}).items():
        typer.echo(f"  {key}: {visible(str(value), lines=True)}")
    typer.echo("now:" if now is not None else "now: the row does not exist")
    for key, value in (now or {}).items():
        typer.echo(f"  {key}: {visible(str(value), lines=True)}")


@conflicts_app.command("resolve")
def resolve_command(
    conflict: str = IdArg,
    keep: Annotated[
        str,
        typer.Option(
            "--keep",
            help="mine: put the version kept aside back; theirs: keep the row as it is; "
            "both: keep the row and the version kept aside as a conflicted copy (notes only).",
        ),
    ] = "both",
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Resolve a conflict; every device sees it resolved after its next sync."""
    from duru.sync.conflicts import resolve

    with device(db, writes=True) as store:
        c = resolve(store.db, conflict, keep)  # type: ignore[arg-type]
    if as_json:
        print_json(c.to_json())
    else:
        copy = f", conflicted copy {short(c.copy_id)} kept" if c.copy_id else ""
        typer.echo(f"resolved {short(c.id)}: kept {keep}{copy}")
    if c.notice:
        typer.echo(c.notice, err=as_json)


def _summary(row: dict[str, object] | None) -> str:
    if row is None:
        return "(deleted)"
    text = str(row.get("title") or row.get("name") or row.get("content") or row.get("tag") or "")
    return visible(text[:60])
