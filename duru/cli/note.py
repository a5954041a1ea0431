"""`duru note`: add, list, show, edit, pin, trash, restore and purge notes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import (
    JsonOption,
    device,
    for_table,
    friendly,
    read_text,
    report_written,
    resolve,
)
from duru.cli.output import print_json, print_rows, visible
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.local import DeviceStore
    from duru.model import Row

note_app = typer.Typer(
    help="Notes: add, list, show, edit, pin, move to the trash, restore and purge.",
    no_args_is_help=True,
)
app.add_typer(note_app, name="note")

NoteArg = typer.Argument(..., help="Note id: the full uuid or a unique prefix (4+ characters).")
TagsOption = typer.Option([], "--tag", "-t", help="A tag for the note (repeat for more).")
LimitOption = typer.Option(50, "--limit", "-n", help="Show at most this many notes.")
NOTE_COLUMNS = ("id", "title", "pinned", "updated_at")


@note_app.command("add")
def add(
    title: str = typer.Argument(..., help="The note's title."),
    body: str = typer.Option("", "--body", "-b", help="The note's text; '-' reads standard input."),
    tag: list[str] = TagsOption,
    folder: str | None = typer.Option(
        None, "--folder", "-f", help="File the note in this folder (id or unique prefix)."
    ),
    pin: bool = typer.Option(False, "--pin", help="Pin the note to the top of the list."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Add a note (makes the device database if there is none yet)."""
    from duru.model import FOLDER, NOTE

    with device(db, create=True, writes=True) as store:
        folder_id = None if folder is None else resolve(store, FOLDER, folder)
        note = store.notes.create(title, read_text(body), folder_id=folder_id, tags=tag, pinned=pin)
        report_written(NOTE, note, "added", visible(note["title"]), as_json)


@note_app.command("list")
def list_notes(
    limit: int = LimitOption,
    offset: int = typer.Option(0, "--offset", help="Skip this many notes first."),
    tag: str | None = typer.Option(None, "--tag", "-t", help="Only notes with this tag."),
    folder: str | None = typer.Option(
        None, "--folder", "-f", help="Only notes filed in this folder (id or unique prefix)."
    ),
    recursive: bool = typer.Option(
        False, "--recursive", "-r", help="With --folder: notes in its sub-folders too."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List live notes: pinned first, then the most recently changed."""
    from duru.model import FOLDER

    with device(db) as store:
        if recursive and folder is None:
            raise UsageError("--recursive needs --folder")
        if tag is None and folder is None:
            rows = store.notes.list_recent(limit, offset)
        else:
            folder_id = None if folder is None else resolve(store, FOLDER, folder)
            rows = _filtered(store, tag, folder_id, recursive, limit, offset)
        _print_notes(rows, "Notes", as_json)


def _filtered(
    store: DeviceStore,
    tag: str | None,
    folder_id: str | None,
    recursive: bool,
    limit: int,
    offset: int,
) -> list[Row]:
    """Live notes with ``tag`` and/or in ``folder_id``, in the order of `note list`."""
    if limit < 0 or offset < 0:
        raise UsageError(f"--limit and --offset must not be negative (got {limit}, {offset})")
    found: list[Row] | None = None
    if tag is not None:
        found = store.tags.notes_with(tag)
    if folder_id is not None:
        inside = store.folders.notes_in(folder_id, recursive=recursive)
        keep = {r["id"] for r in inside}
        found = inside if found is None else [r for r in found if r["id"] in keep]
    # Both lists come most recently changed first; pinned ones go to the top, as in list_recent.
    rows = sorted(found or [], key=lambda r: -r["is_pinned"])
    return rows[offset : offset + limit]


@note_app.command("trash")
def trash(
    limit: int = LimitOption,
    empty: bool = typer.Option(
        False, "--empty", help="Purge every note in the trash for good instead of listing them."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List the notes in the trash, most recently trashed first (or empty it)."""
    with device(db, writes=empty) as store:
        if empty:
            purged = store.notes.empty_trash()
            if as_json:
                print_json({"purged": purged})
            else:
                typer.echo(f"purged {purged} notes from the trash")
            return
        _print_notes(store.notes.list_trash(limit), "Trash", as_json)


@note_app.command("show")
def show(note: str = NoteArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Show a note with its folder, tags, tasks and links."""
    from duru.model import NOTE

    with device(db) as store:
        view = _note_view(store, resolve(store, NOTE, note))
    if as_json:
        print_json(view)
        return
    _print_view(view)


@note_app.command("edit")
def edit(
    note: str = NoteArg,
    title: str | None = typer.Option(None, "--title", help="The new title."),
    body: str | None = typer.Option(
        None, "--body", "-b", help="The new text; '-' reads standard input."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Change a live note's title and/or text."""
    from duru.model import NOTE

    with device(db, writes=True) as store:
        if title is None and body is None:
            raise UsageError("nothing to change: give --title and/or --body")
        text = None if body is None else read_text(body)
        row = store.notes.edit(resolve(store, NOTE, note), title=title, body=text)
        report_written(NOTE, row, "edited", visible(row["title"]), as_json)


def _note_action(name: str, verb: str, doc: str) -> None:
    """Register `duru note <name> NOTE`: one call of ``store.notes.<name>``."""

    def command(
        note: str = NoteArg, as_json: bool = JsonOption, db: Path | None = DbOption
    ) -> None:
        from duru.model import NOTE

        with device(db, writes=True) as store:
            row = getattr(store.notes, name)(resolve(store, NOTE, note))
            report_written(NOTE, row, verb, visible(row["title"]), as_json)

    command.__doc__ = doc
    note_app.command(name)(command)


_note_action("pin", "pinned", "Pin a note to the top of the list.")
_note_action("unpin", "unpinned", "Unpin a note.")
_note_action("restore", "restored", "Bring a note back from the trash.")


@note_app.command("rm")
def remove(note: str = NoteArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Move a note to the trash (`duru note restore` brings it back)."""
    from duru.model import NOTE

    with device(db, writes=True) as store:
        row = store.notes.trash(resolve(store, NOTE, note))
        report_written(NOTE, row, "trashed", visible(row["title"]), as_json)


@note_app.command("purge")
def purge(
    note: str = NoteArg,
    force: bool = typer.Option(
        False, "--force", help="Purge even a note that is not in the trash."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Delete a trashed note for good, with its tags, tasks, reminders and links."""
    from duru.model import NOTE

    with device(db, writes=True) as store:
        row = store.notes.purge(resolve(store, NOTE, note), force=force)
        report_written(NOTE, row, "purged", visible(row["title"]), as_json)


def _print_notes(rows: list[Row], title: str, as_json: bool) -> None:
    from duru.model import NOTE

    if as_json:
        print_json([friendly(NOTE, r) for r in rows])
        return
    shown = [{**r, "pinned": "yes" if r["is_pinned"] else ""} for r in for_table(NOTE, rows)]
    print_rows(shown, NOTE_COLUMNS, title=title)


def _note_view(store: DeviceStore, note_id: str) -> Row:
    """Everything `note show` prints."""
    from duru.model import NOTE, NOTE_LINK, TASK

    folder = store.folders.folder_of(note_id)
    path = [] if folder is None else [f["name"] for f in store.folders.path(folder["id"])]
    backlinks = [
        {**friendly(NOTE_LINK, r), "source_title": store.notes.get(r["source_id"])["title"]}
        for r in store.links.backlinks(note_id)
    ]
    return {
        "note": friendly(NOTE, store.notes.get(note_id)),
        "folder": None if folder is None else {"id": folder["id"], "path": path},
        "tags": store.tags.list_for(note_id),
        "tasks": [
            {**friendly(TASK, n.task), "depth": n.depth} for n in store.tasks.list_for_note(note_id)
        ],
        "links": [friendly(NOTE_LINK, r) for r in store.links.outgoing(note_id)],
        "backlinks": backlinks,
    }


def _print_view(view: Row) -> None:
    note = view["note"]
    flags = [f for f, on in (("pinned", note["is_pinned"]), ("in trash", note["deleted"])) if on]
    title = visible(note["title"])
    typer.echo(f"{title}  ({note['id']}{', ' + ', '.join(flags) if flags else ''})")
    if view["folder"] is not None:
        typer.echo("folder: " + visible(" / ".join(view["folder"]["path"])))
    if view["tags"]:
        typer.echo("tags: " + visible(", ".join(view["tags"])))
    typer.echo("")
    typer.echo(visible(note["body"], lines=True))
    if view["tasks"]:
        typer.echo("\ntasks:")
        for task in view["tasks"]:
            box = "x" if task["status"] == "completed" else " "
            content = visible(task["content"])
            typer.echo(f"{'  ' * (task['depth'] + 1)}[{box}] {content}  ({task['id'][:8]})")
    for label, key in (("links", "target_title"), ("backlinks", "source_title")):
        if view[label]:
            typer.echo(f"\n{label}: " + visible(", ".join(str(r[key]) for r in view[label])))
