"""`duru tag`: tag and untag notes, rename a tag everywhere, count notes per tag."""

from __future__ import annotations

from pathlib import Path

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, resolve, short
from duru.cli.output import print_json, print_rows, visible
from duru.errors import NotFound, UsageError

tag_app = typer.Typer(
    help="Tags: free-text labels on notes (case is kept: Work and work are two tags).",
    no_args_is_help=True,
)
app.add_typer(tag_app, name="tag")

NoteArg = typer.Argument(..., help="Note id: the full uuid or a unique prefix (4+ characters).")
TagsArg = typer.Argument(..., help="One or more tags to put on the note.")


@tag_app.command("add")
def add(
    note: str = NoteArg,
    tags: list[str] = TagsArg,
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Tag a note (a tag it already has stays one tag)."""
    from duru.model import NOTE

    with device(db, writes=True) as store:
        note_id = resolve(store, NOTE, note)
        with store.db.transaction():
            for tag in tags:
                store.tags.add(note_id, tag)
        now = store.tags.list_for(note_id)
    if as_json:
        print_json({"note_id": note_id, "tags": now})
        return
    typer.echo(f"note {short(note_id)} tags: {visible(', '.join(now))}")


@tag_app.command("rm")
def remove(
    note: str = NoteArg,
    tag: str = typer.Argument(..., help="The tag to take off."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Take a tag off a note (exit 3 when the note does not have it)."""
    from duru.model import NOTE

    with device(db, writes=True) as store:
        note_id = resolve(store, NOTE, note)
        if not store.tags.remove(note_id, tag):
            raise NotFound(f"note {short(note_id)} has no tag {tag!r}")
    if as_json:
        print_json({"note_id": note_id, "tag": tag, "removed": True})
        return
    typer.echo(f"removed tag {tag!r} (note {short(note_id)})")


@tag_app.command("rename")
def rename(
    old: str = typer.Argument(..., help="The tag as it is now."),
    new: str = typer.Argument(..., help="Its new name (merged where a note already has it)."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Rename a tag on every note (trashed ones too); exit 3 when no note has it."""
    from duru.local.tags import normalize_tag

    with device(db, writes=True) as store:
        if normalize_tag(old) == normalize_tag(new):
            raise UsageError(f"{old!r} and {new!r} are the same tag: nothing to rename")
        changed = store.tags.rename(old, new)
        if not changed:
            raise NotFound(f"no note has the tag {old!r}")
    if as_json:
        print_json({"old": old, "new": new, "changed": changed})
        return
    typer.echo(f"renamed {old!r} to {new!r} on {changed} notes")


@tag_app.command("list")
def list_tags(as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """List tags with how many live notes carry each."""
    with device(db) as store:
        counts = store.tags.counts()
    rows = [{"tag": t, "notes": n} for t, n in counts.items()]
    print_rows(rows, ("tag", "notes"), title="Tags", as_json=as_json)
