"""Benchmark CLI start-up: fresh processes running cheap ``duru`` commands.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 20]

Each command runs ``--runs`` times in a new interpreter (the cost a user pays on
every call, almost all of it imports). Prints p50/p95/p99 wall time per command
and its ratio to a bare ``python -c pass`` measured in the same run. Commands:
``duru --help``, ``duru note list`` and ``duru migrate status`` of a fresh device
file, ``duru sync --help``, ``duru migrate --help``, ``duru migrate lint`` of one
file, and ``import duru.migrate``.

The floor is a two-command Typer app (``--help`` and one command): what Typer,
click and Typer's Rich help cost before duru adds anything.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SQL = "ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;\n"

TYPER_FLOOR = """
import typer
app = typer.Typer(add_completion=False)
group = typer.Typer(help="Notes.")
app.add_typer(group, name="note")

@group.command("list")
def list_(limit: int = typer.Option(20, help="How many.")) -> None:
    \"\"\"List notes.\"\"\"
    typer.echo(limit)

app()
"""


def commands(folder: Path) -> dict[str, list[str]]:
    py = sys.executable
    duru = [py, "-c", "import sys; from duru.cli import main; sys.argv[0] = 'duru'; main()"]
    sql = folder / "0001_pinned.sql"
    sql.write_text(SQL)
    db = folder / "device.db"
    subprocess.run([*duru, "init", "--db", str(db)], capture_output=True, check=False)
    return {
        "python -c pass (reference)": [py, "-c", "pass"],
        "typer floor: --help": [py, "-c", TYPER_FLOOR, "--help"],
        "typer floor: note list": [py, "-c", TYPER_FLOOR, "note", "list"],
        "duru --help": [*duru, "--help"],
        "duru note list --db <file>": [*duru, "note", "list", "--db", str(db)],
        "duru sync --help": [*duru, "sync", "--help"],
        "duru migrate --help": [*duru, "migrate", "--help"],
        "duru migrate lint <one file>": [*duru, "migrate", "lint", str(sql)],
        "duru migrate status --db <file>": [*duru, "migrate", "status", "--db", str(db)],
        "python -c 'import duru.migrate'": [py, "-c", "import duru.migrate"],
    }


def timed(argvs: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Wall times per command; the commands take turns, so a change in load hits all alike."""
    for argv in argvs.values():
        subprocess.run(argv, capture_output=True, check=False)  # warm the file cache
    out: dict[str, list[float]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            t0 = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            out[name].append(time.perf_counter() - t0)
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = timed(commands(Path(tmp)), args.runs)
    ref = statistics.median(table["python -c pass (reference)"])
    print(f"CLI start-up, {args.runs} fresh processes each (ms)")
    print("x ref: p50 / bare interpreter; x floor: p50 / the Typer floor (--help or command)")
    print(f"{'command':<36} {'p50':>7} {'p95':>7} {'p99':>7} {'x ref':>7} {'x floor':>7}")
    for name, values in table.items():
        p50, p95, p99 = (quantile(values, q) * 1000 for q in (0.5, 0.95, 0.99))
        kind = "--help" if "--help" in name else "note list"
        floor = statistics.median(table[f"typer floor: {kind}"]) * 1000
        ratios = f"{p50 / 1000 / ref:7.1f} {p50 / floor:7.1f}"
        print(f"{name:<36} {p50:7.0f} {p95:7.0f} {p99:7.0f} {ratios}")


if __name__ == "__main__":
    main()
