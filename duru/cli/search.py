"""`duru search`: full-text search over live notes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, resolve, short
from duru.cli.output import print_json, print_rows
from duru.cli.saved_search import search_marks


@app.command("search")
def search(
    query: str = typer.Argument(
        ...,
        help='What to find: words (all must occur), "design review" (phrase), desig* (prefix).'
        " Any other character is just text. Case and accents are ignored; Chinese, Japanese,"
        " Korean, Thai and emoji are found inside words too.",
    ),
    tag: str | None = typer.Option(None, "--tag", "-t", help="Only notes with this tag."),
    folder: str | None = typer.Option(
        None, "--folder", "-f", help="Only notes filed in this folder (id or unique prefix)."
    ),
    pinned: bool = typer.Option(False, "--pinned", help="Only pinned notes."),
    limit: int = typer.Option(20, "--limit", "-n", help="Show at most this many notes."),
    advanced: bool = typer.Option(
        False,
        "--advanced",
        "-a",
        help="Read the query as SQLite FTS5 syntax: AND/OR/NOT, (brackets), NEAR, title:word.",
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Search live notes, best match first; matched words are marked « » (in --json, [ ])."""
    from duru.model import FOLDER

    with device(db) as store:
        folder_id = None if folder is None else resolve(store, FOLDER, folder)
        hits = store.search.query(
            query,
            limit=limit,
            tag=tag,
            folder_id=folder_id,
            pinned=True if pinned else None,
            advanced=advanced,
            # Brackets read as Markdown links when pasted; « » do not. JSON keeps [ ].
            markers=search_marks(as_json),
        )
    if as_json:
        print_json([asdict(h) for h in hits])
        return
    rows = [{"id": short(h.id), "title": h.title_marked, "snippet": h.snippet} for h in hits]
    print_rows(rows, ("id", "title", "snippet"), title=f"{len(hits)} notes, best first")
