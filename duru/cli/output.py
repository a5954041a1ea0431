"""How commands print: JSON for machines, Rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False, soft_wrap=True)


def print_json(obj: object) -> None:
    """Write ``obj`` as indented JSON on stdout (keys sorted, unicode kept)."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def print_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    as_json: bool = False,
) -> None:
    """Print rows as JSON (every field) or as a table of ``columns``."""
    rows = list(rows)
    if as_json:
        print_json(rows)
        return
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        # Text, not markup: a title like [[Groceries]] or [b] must print as typed.
        table.add_row(*(Text(format_value(col, row.get(col))) for col in columns))
    console.print(table)


def format_value(column: str, value: object) -> str:
    """A short human form: epoch-ms timestamps as UTC dates, long text cut."""
    if value is None:
        return ""
    if isinstance(value, int) and column.endswith(("_at", "_date", "_until", "remind_at")):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
