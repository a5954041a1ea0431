"""`duru link`: links between notes, written by title, and the backlinks they make."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, friendly, report_written, resolve, short
from duru.cli.output import print_rows, visible
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.model import Row

link_app = typer.Typer(
    help="Links between notes: by title ([[Groceries]]), resolved to a note when one has it.",
    no_args_is_help=True,
)
app.add_typer(link_app, name="link")

NoteArg = typer.Argument(..., help="Note id: the full uuid or a unique prefix (4+ characters).")
LINK_COLUMNS = ("id", "source_id", "target_title", "target_id")


@link_app.command("add")
def add(
    note: str = NoteArg,
    title: str = typer.Argument(..., help="The title of the note to link to (exactly)."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Link a note to the note with a title (the link waits when no note has it yet)."""
    from duru.model import NOTE, NOTE_LINK

    with device(db, writes=True) as store:
        row = store.links.add(resolve(store, NOTE, note), title)
        state = "" if row["target_id"] is not None else " (waiting: no note has that title)"
        report_written(
            NOTE_LINK, row, "linked", f"-> {visible(row['target_title'])}{state}", as_json
        )


@link_app.command("list")
def list_links(
    note: str | None = typer.Argument(
        None, help="The note whose links to list (id or prefix); leave out with --waiting."
    ),
    waiting: bool = typer.Option(
        False, "--waiting", help="List links on any note whose title no note has yet."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List the links written in a note, by title (resolved or waiting)."""
    from duru.model import NOTE

    with device(db) as store:
        if (note is None) == (not waiting):
            raise UsageError("give either a note or --waiting, not both or neither")
        rows = (
            store.links.unresolved()
            if note is None
            else store.links.outgoing(resolve(store, NOTE, note))
        )
    _print_links(rows, "Links", as_json)


@link_app.command("backlinks")
def backlinks(note: str = NoteArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """List the links from live notes that lead to a note."""
    from duru.model import NOTE

    with device(db) as store:
        rows = store.links.backlinks(resolve(store, NOTE, note))
    _print_links(rows, "Backlinks", as_json)


@link_app.command("rm")
def remove(
    link: str = typer.Argument(
        ..., help="Link id (see `duru link list`): the full uuid or a unique prefix."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Delete a link."""
    from duru.model import NOTE_LINK

    with device(db, writes=True) as store:
        row = store.links.remove(resolve(store, NOTE_LINK, link))
        report_written(NOTE_LINK, row, "removed", f"-> {visible(row['target_title'])}", as_json)


def _print_links(rows: list[Row], title: str, as_json: bool) -> None:
    from duru.model import NOTE_LINK

    if as_json:
        print_rows([friendly(NOTE_LINK, r) for r in rows], LINK_COLUMNS, as_json=True)
        return
    shown = [
        {
            **r,
            "id": short(r["id"]),
            "source_id": short(r["source_id"]),
            "target_id": "waiting" if r["target_id"] is None else short(r["target_id"]),
        }
        for r in rows
    ]
    print_rows(shown, LINK_COLUMNS, title=title)
