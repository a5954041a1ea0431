"""`duru template`: note templates, and new notes made from them."""

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
from duru.cli.output import print_fields, print_rows, visible

if TYPE_CHECKING:
    from duru.model import Row

template_app = typer.Typer(
    help="Templates: a title, text and tags to start new notes from.",
    no_args_is_help=True,
)
app.add_typer(template_app, name="template")

TemplateArg = typer.Argument(
    ..., help="Template id: the full uuid or a unique prefix (4+ characters)."
)
TagsOption = typer.Option([], "--tag", "-t", help="A tag for its notes (repeat for more).")
TEMPLATE_COLUMNS = ("id", "title", "category", "tags", "sort_order")


@template_app.command("add")
def add(
    title: str = typer.Argument(..., help="The title notes made from it start with."),
    body: str = typer.Option("", "--body", "-b", help="Its text; '-' reads standard input."),
    tag: list[str] = TagsOption,
    category: str | None = typer.Option(None, "--category", help="A category to group it by."),
    description: str | None = typer.Option(None, "--description", help="What the template is for."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Add a template, last in order."""
    from duru.model import TEMPLATE

    with device(db, create=True, writes=True) as store:
        row = store.templates.create(
            title, read_text(body), tags=tag, category=category, description=description
        )
        report_written(TEMPLATE, row, "added", visible(row["title"]), as_json)


@template_app.command("list")
def list_templates(as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """List templates in their order."""
    from duru.model import TEMPLATE

    with device(db) as store:
        rows = store.templates.list()
    if as_json:
        print_rows([friendly(TEMPLATE, r) for r in rows], TEMPLATE_COLUMNS, as_json=True)
        return
    shown = [{**r, "tags": ", ".join(r["tags"])} for r in for_table(TEMPLATE, rows)]
    print_rows(shown, TEMPLATE_COLUMNS, title="Templates")


@template_app.command("show")
def show(
    template: str = TemplateArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Show a template with its whole text."""
    from duru.model import TEMPLATE

    with device(db) as store:
        row = friendly(TEMPLATE, store.templates.get(resolve(store, TEMPLATE, template)))
    if as_json:
        print_fields(row, as_json=True)
        return
    print_fields({k: v for k, v in row.items() if k != "body"})
    typer.echo("")
    typer.echo(visible(row["body"], lines=True))


@template_app.command("rm")
def remove(
    template: str = TemplateArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Delete a template (notes made from it stay)."""
    from duru.model import TEMPLATE

    with device(db, writes=True) as store:
        row = store.templates.delete(resolve(store, TEMPLATE, template))
        report_written(TEMPLATE, row, "deleted", visible(row["title"]), as_json)


@template_app.command("use")
def use(
    template: str = TemplateArg,
    folder: str | None = typer.Option(
        None, "--folder", "-f", help="File the new note in this folder (id or unique prefix)."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Make a new note from a template: its title, text and tags."""
    from duru.model import FOLDER, NOTE, TEMPLATE

    with device(db, writes=True) as store:
        template_id = resolve(store, TEMPLATE, template)
        folder_id = None if folder is None else resolve(store, FOLDER, folder)
        note: Row = store.templates.instantiate(template_id, folder_id=folder_id)
        report_written(NOTE, note, "added", visible(note["title"]), as_json)
