"""`duru saved-search`: searches kept by name, and running them again.

`duru search` is one command, not a group, so saved searches have a group of
their own. A saved search's ``parameters`` hold the filters of `duru search`
(``tag``, ``folder_id``, ``pinned``, ``advanced``); others (from the app) are
kept, shown, and named as ignored when the search runs here.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, for_table, friendly, report_written, resolve, short
from duru.cli.output import print_fields, print_json, print_rows, visible

if TYPE_CHECKING:
    from duru.local.snippets import Markers

saved_app = typer.Typer(
    help="Saved searches: a query and its filters kept by name; `run` searches again.",
    no_args_is_help=True,
)
app.add_typer(saved_app, name="saved-search")

SearchArg = typer.Argument(
    ..., help="Saved search id: the full uuid or a unique prefix (4+ characters)."
)
SEARCH_COLUMNS = ("id", "name", "query", "is_pinned", "usage_count", "last_used_at")
_FILTERS = {"tag": str, "folder_id": str, "pinned": bool, "advanced": bool}


@saved_app.command("add")
def add(
    name: str = typer.Argument(..., help="A name to find it by."),
    query: str = typer.Argument(..., help="What to search for, as `duru search` takes it."),
    tag: str | None = typer.Option(None, "--tag", "-t", help="Only notes with this tag."),
    folder: str | None = typer.Option(
        None, "--folder", "-f", help="Only notes filed in this folder (id or unique prefix)."
    ),
    pinned: bool = typer.Option(False, "--pinned", help="Only pinned notes."),
    advanced: bool = typer.Option(
        False, "--advanced", "-a", help="Read the query as SQLite FTS5 syntax."
    ),
    pin: bool = typer.Option(False, "--pin", help="Keep this saved search at the top."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Save a search under a name (it runs with `duru saved-search run`)."""
    from duru.model import FOLDER, SAVED_SEARCH

    with device(db, create=True, writes=True) as store:
        folder_id = None if folder is None else resolve(store, FOLDER, folder)
        chosen = {"tag": tag, "folder_id": folder_id, "pinned": pinned or None}
        parameters = {k: v for k, v in {**chosen, "advanced": advanced or None}.items() if v}
        row = store.saved_searches.create(
            name,
            query,
            search_type="advanced" if advanced else "text",
            parameters=parameters or None,
            is_pinned=pin,
        )
        report_written(SAVED_SEARCH, row, "added", visible(row["name"]), as_json)


@saved_app.command("list")
def list_searches(as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """List saved searches: pinned first, then in their order."""
    from duru.model import SAVED_SEARCH

    with device(db) as store:
        rows = store.saved_searches.list()
    if as_json:
        print_rows([friendly(SAVED_SEARCH, r) for r in rows], SEARCH_COLUMNS, as_json=True)
        return
    shown = for_table(SAVED_SEARCH, rows)
    for row in shown:
        row["is_pinned"] = "pinned" if row["is_pinned"] else ""
    print_rows(shown, SEARCH_COLUMNS, title="Saved searches")


@saved_app.command("show")
def show(search: str = SearchArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Show a saved search: its query, filters and use."""
    from duru.model import SAVED_SEARCH

    with device(db) as store:
        row = friendly(SAVED_SEARCH, store.saved_searches.get(resolve(store, SAVED_SEARCH, search)))
    print_fields(row, as_json)


@saved_app.command("run")
def run(
    search: str = SearchArg,
    limit: int = typer.Option(20, "--limit", "-n", help="Show at most this many notes."),
    record: bool = typer.Option(
        True, "--record/--no-record", help="Count this use (its usage count and last use)."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Run a saved search: the notes it finds now, best match first."""
    from duru.model import SAVED_SEARCH

    with device(db, writes=record) as store:
        saved = store.saved_searches.get(resolve(store, SAVED_SEARCH, search))
        filters = search_filters(friendly(SAVED_SEARCH, saved)["parameters"])
        marks = search_marks(as_json)
        hits = store.search.query(saved["query"], limit=limit, markers=marks, **filters)
        if record:
            store.saved_searches.touch(saved["id"])
    if as_json:
        print_json([asdict(h) for h in hits])
        return
    rows = [{"id": short(h.id), "title": h.title_marked, "snippet": h.snippet} for h in hits]
    print_rows(rows, ("id", "title", "snippet"), title=f"{len(hits)} notes, best first")


@saved_app.command("rm")
def remove(search: str = SearchArg, as_json: bool = JsonOption, db: Path | None = DbOption) -> None:
    """Delete a saved search."""
    from duru.model import SAVED_SEARCH

    with device(db, writes=True) as store:
        row = store.saved_searches.delete(resolve(store, SAVED_SEARCH, search))
        report_written(SAVED_SEARCH, row, "deleted", visible(row["name"]), as_json)


def search_marks(as_json: bool) -> Markers:
    """How matches are marked: [ ] in JSON, « » on a terminal."""
    from duru.local.search import DEFAULT_MARKERS
    from duru.local.snippets import Markers

    # Marks no Markdown uses, so a marked title cannot be read as a link or a footnote.
    return DEFAULT_MARKERS if as_json else Markers("«", "»", "…")


def search_filters(parameters: object) -> dict[str, Any]:
    """The `duru search` filters among a saved search's parameters; others are named, unused."""
    if not isinstance(parameters, dict):
        if parameters is not None:
            typer.echo("duru: the saved parameters are not an object: ignored", err=True)
        return {}
    usable = {k: v for k, v in parameters.items() if isinstance(v, _FILTERS.get(k, ()))}
    ignored = sorted(set(parameters) - set(usable))
    if ignored:
        names = visible(", ".join(ignored))
        typer.echo(f"duru: saved parameters this command does not use: {names}", err=True)
    return usable
