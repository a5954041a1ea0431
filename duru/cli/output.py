"""How commands print: JSON for machines, Rich tables for people.

Rich is imported when something is printed with it, not when this module is:
`duru --help` and the commands that print plain lines or JSON start without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn

ProgressCallback = Callable[[str, int, int], None]


@cache
def console() -> Console:
    """The console that tables and sections print on (standard output)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


# What a terminal obeys instead of showing: C0 and C1 controls and DEL (colours, titles,
# cursor moves, a CSI in \x9b), bidi overrides and isolates (text shown reversed), line
# and paragraph separators, and lone surrogates (unprintable). Tab and newline are
# allowed only where a text prints over several lines.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
_JSON_HIDDEN = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``).

    User text (titles, bodies, tags) goes through this before a terminal sees it,
    so a title like ``"\\x1b[31mred"`` cannot colour the screen or move the cursor.
    With ``lines``, newlines and tabs stay (a CR LF becomes a newline). Backslashes
    are left as typed; ``--json`` gives the exact text.
    """
    if lines:
        text = text.replace("\r\n", "\n")

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if lines and char in "\n\t":
            return char
        return _NAMED.get(char) or _escape_code(char)

    return _HIDDEN.sub(escape, text)


def _escape_code(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def print_json(obj: object) -> None:
    """Write ``obj`` as indented JSON on stdout (keys sorted, unicode kept).

    JSON escapes C0 controls itself; the other characters a terminal obeys are
    written as ``\\uXXXX`` escapes too, which parse back to the same text.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    typer.echo(_JSON_HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


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
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        # Text, not markup: a title like [[Groceries]] or [b] must print as typed.
        table.add_row(*(Text(format_value(col, row.get(col))) for col in columns))
    console().print(table)


def print_fields(row: Mapping[str, Any], as_json: bool = False) -> None:
    """One row: ``field: value`` lines for people (text whole, escaped), the object for machines."""
    if as_json:
        print_json(row)
        return
    width = max((len(k) for k in row), default=0)
    for key, value in row.items():
        if isinstance(value, list | dict):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = value if isinstance(value, str) else format_value(key, value)
        typer.echo(f"{key:<{width}}  {visible(shown)}")


def format_value(column: str, value: object) -> str:
    """A short human form: epoch-ms timestamps as UTC dates, long text cut."""
    if value is None:
        return ""
    if isinstance(value, int) and column.endswith(("_at", "_date", "_until", "remind_at")):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    text = visible(str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _rows_per_second() -> ProgressColumn:
    """A column of rows per second (Rich's speed column speaks of bytes)."""
    from rich.progress import TransferSpeedColumn

    class RowsPerSecond(TransferSpeedColumn):
        def render(self, task: object) -> str:  # type: ignore[override]
            speed = getattr(task, "finished_speed", None) or getattr(task, "speed", None)
            return "" if speed is None else f"{speed:,.0f} rows/s"

    return RowsPerSecond()


@contextmanager
def progress_bar() -> Iterator[ProgressCallback | None]:
    """Per-item progress bars with rate and ETA on stderr; None when stderr is no terminal.

    The callback takes (item, done, total), the shape every long library call reports in.
    """
    from rich.console import Console

    err = Console(stderr=True)
    if not err.is_terminal:
        # Even a transient bar leaves a blank line behind on a pipe.
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    bars: dict[str, TaskID] = {}
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _rows_per_second(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:

        def update(item: str, done: int, total: int) -> None:
            if item not in bars:
                bars[item] = progress.add_task(item, total=total)
            progress.update(bars[item], completed=done, total=total)

        yield update
