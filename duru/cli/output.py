"""How commands print: JSON for machines, Rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

ProgressCallback = Callable[[str, int, int], None]

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


class _RowsPerSecond(TransferSpeedColumn):
    """Rows per second (Rich's speed column speaks of bytes)."""

    def render(self, task: object) -> str:  # type: ignore[override]
        speed = getattr(task, "finished_speed", None) or getattr(task, "speed", None)
        return "" if speed is None else f"{speed:,.0f} rows/s"


@contextmanager
def progress_bar() -> Iterator[ProgressCallback | None]:
    """Per-item progress bars with rate and ETA on stderr; None when stderr is no terminal.

    The callback takes (item, done, total), the shape every long library call reports in.
    """
    err = Console(stderr=True)
    if not err.is_terminal:
        # Even a transient bar leaves a blank line behind on a pipe.
        yield None
        return
    bars: dict[str, TaskID] = {}
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:

        def update(item: str, done: int, total: int) -> None:
            if item not in bars:
                bars[item] = progress.add_task(item, total=total)
            progress.update(bars[item], completed=done, total=total)

        yield update
