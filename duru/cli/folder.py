"""`duru folder`: the folder tree, and filing notes in it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, friendly, report_written, resolve, short
from duru.cli.output import print_json, print_rows, visible
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.local.folders import NotesTo

folder_app = typer.Typer(
    help="Folders: a tree of any depth; each note is filed in at most one.",
    no_args_is_help=True,
)
app.add_typer(folder_app, name="folder")

FolderArg = typer.Argument(..., help="Folder id: the full uuid or a unique prefix (4+ characters).")


@folder_app.command("add")
def add(
    name: str = typer.Argument(..., help="The folder's name."),
    parent: str | None = typer.Option(
        None, "--parent", "-p", help="Put it under this folder (id or prefix); default: the top."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Add a folder, last among its siblings."""
    from duru.model import FOLDER

    with device(db, writes=True) as store:
        parent_id = None if parent is None else resolve(store, FOLDER, parent)
        row = store.folders.create(name, parent_id)
        report_written(FOLDER, row, "added", visible(row["name"]), as_json)


@folder_app.command("list")
def list_folders(as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Show the folder tree, depth first, siblings in order."""
    from duru.model import FOLDER

    with device(db) as store:
        nodes = store.folders.tree()
    if as_json:
        print_json(
            [{**friendly(FOLDER, n.folder), "depth": n.depth, "path": list(n.path)} for n in nodes]
        )
        return
    rows = [
        {"id": short(n.folder["id"]), "folder": "  " * n.depth + n.folder["name"]} for n in nodes
    ]
    print_rows(rows, ("id", "folder"), title="Folders")


@folder_app.command("rename")
def rename(
    folder: str = FolderArg,
    name: str = typer.Argument(..., help="The new name."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Give a folder a new name."""
    from duru.model import FOLDER

    with device(db, writes=True) as store:
        row = store.folders.rename(resolve(store, FOLDER, folder), name)
        report_written(FOLDER, row, "renamed", visible(row["name"]), as_json)


@folder_app.command("move")
def move(
    folder: str = FolderArg,
    parent: str | None = typer.Argument(
        None, help="The new parent folder (id or prefix); leave out with --top."
    ),
    top: bool = typer.Option(False, "--top", help="Move the folder to the top level."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Move a folder, with everything in it, under another folder or to the top."""
    from duru.model import FOLDER

    with device(db, writes=True) as store:
        if (parent is None) == (not top):
            raise UsageError("give either a new parent folder or --top, not both or neither")
        parent_id = None if parent is None else resolve(store, FOLDER, parent)
        row = store.folders.move(resolve(store, FOLDER, folder), parent_id)
        report_written(FOLDER, row, "moved", visible(row["name"]), as_json)


@folder_app.command("rm")
def remove(
    folder: str = FolderArg,
    notes_to: str = typer.Option(
        "parent",
        "--notes-to",
        help="Where the folder's notes go: 'parent' (its parent folder, or unfiled at the top)"
        " or 'trash'. Its sub-folders always move up to its parent.",
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Delete a folder for good; its notes and sub-folders are re-homed, never lost."""
    from duru.model import FOLDER

    with device(db, writes=True) as store:
        moved = store.folders.delete(
            resolve(store, FOLDER, folder), notes_to=cast("NotesTo", notes_to)
        )
    if as_json:
        print_json(moved)
        return
    typer.echo(
        f"deleted the folder: {moved['notes']} notes re-homed ({notes_to}),"
        f" {moved['folders']} sub-folders moved up"
    )


@folder_app.command("file")
def file_note(
    note: str = typer.Argument(..., help="Note id (or unique prefix) to file."),
    folder: str = FolderArg,
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """File a note in a folder (a note is in one folder: this replaces its old one)."""
    from duru.model import FOLDER, NOTE, NOTE_FOLDER

    with device(db, writes=True) as store:
        note_id = resolve(store, NOTE, note)
        row = store.folders.file_note(note_id, resolve(store, FOLDER, folder))
    if as_json:
        print_json(friendly(NOTE_FOLDER, row))
        return
    typer.echo(f"filed note {short(note_id)} in folder {short(row['folder_id'])}")
