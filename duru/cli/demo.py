"""`duru demo`: run the device-store story and print each step as a section."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import app, reported
from duru.cli.device import JsonOption
from duru.cli.output import console, print_json, print_rows

if TYPE_CHECKING:
    from duru.demo import DemoResult, StepResult

DirOption = typer.Option(
    None,
    "--dir",
    help="Make the demo database in this folder (default: a new temporary folder, kept).",
)


@app.command("demo")
def demo(
    folder: Path | None = DirOption,
    notes: int | None = typer.Option(
        None, "--notes", help="How many generated notes to add to the samples (default 200)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Fill a fresh device database with a realistic notebook and show what duru does with it."""
    # duru.demo pulls in the sync server and PostgreSQL: import it only when the demo runs,
    # so that `duru --help` and every other command start fast.
    from duru.demo import run_demo
    from duru.demo.run import DEFAULT_EXTRA_NOTES

    notes = DEFAULT_EXTRA_NOTES if notes is None else notes
    with reported():
        if as_json:
            print_json(run_demo(folder, extra_notes=notes).to_dict())
            return
        result = run_demo(folder, extra_notes=notes, on_step=_print_step)
    _print_timings(result)


def _print_step(step: StepResult) -> None:
    from rich.rule import Rule
    from rich.text import Text

    shown = step.shown
    console().print(Rule(Text(f"{shown.title}  ({step.ms:.1f} ms)", style="bold")))
    if shown.columns:
        print_rows(shown.rows, shown.columns)
    for line in shown.lines:
        console().print(Text(line))
    console().print()


def _print_timings(result: DemoResult) -> None:
    from rich.rule import Rule
    from rich.text import Text

    console().print(Rule(Text("Timings", style="bold")))
    rows = [{"step": s.name, "ms": f"{s.ms:.1f}"} for s in result.steps]
    rows.append({"step": "total", "ms": f"{result.total_ms:.1f}"})
    print_rows(rows, ("step", "ms"))
    console().print(Text(f"explore it: duru note list --db {result.database}"))
