"""Benchmark CLI start-up: fresh processes running cheap ``duru`` commands.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 20]

Each command runs ``--runs`` times in a new interpreter (the cost a user pays on
every call, almost all of it imports). Prints p50/p95/p99 wall time per command
and its ratio to a bare ``python -c pass`` measured in the same run. Commands:
``duru --help``, ``duru migrate --help``, ``duru migrate lint`` of one file,
``duru migrate status`` of a fresh device file, and ``import duru.migrate``.
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


def commands(folder: Path) -> dict[str, list[str]]:
    py = sys.executable
    duru = [py, "-c", "import sys; from duru.cli import main; sys.argv[0] = 'duru'; main()"]
    sql = folder / "0001_pinned.sql"
    sql.write_text(SQL)
    db = folder / "device.db"
    subprocess.run([*duru, "init", "--db", str(db)], capture_output=True, check=False)
    return {
        "python -c pass (reference)": [py, "-c", "pass"],
        "duru --help": [*duru, "--help"],
        "duru migrate --help": [*duru, "migrate", "--help"],
        "duru migrate lint <one file>": [*duru, "migrate", "lint", str(sql)],
        "duru migrate status --db <file>": [*duru, "migrate", "status", "--db", str(db)],
        "python -c 'import duru.migrate'": [py, "-c", "import duru.migrate"],
    }


def timed(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=False)  # warm the file cache
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        out.append(time.perf_counter() - t0)
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = {name: timed(argv, args.runs) for name, argv in commands(Path(tmp)).items()}
    ref = statistics.median(table["python -c pass (reference)"])
    print(f"CLI start-up, {args.runs} fresh processes each (ms)")
    print(f"{'command':<36} {'p50':>7} {'p95':>7} {'p99':>7} {'x ref':>7}")
    for name, values in table.items():
        p50, p95, p99 = (quantile(values, q) * 1000 for q in (0.5, 0.95, 0.99))
        print(f"{name:<36} {p50:7.0f} {p95:7.0f} {p99:7.0f} {p50 / 1000 / ref:7.1f}")


if __name__ == "__main__":
    main()
