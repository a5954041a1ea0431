"""Time `duru import` of a 100k-note legacy (v11) file beside a bare read of the same rows.

Not a test: prints wall and CPU time, rows/s, and the ratio to a bare ``SELECT *``
of every legacy table measured in the same run. The legacy file is made by
tests/legacy_factory.py (every trap included) in a child process, so the
import's peak memory is measured alone.

    python benchmarks/bench_import.py [NOTES]
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from legacy_factory import TABLES  # noqa: E402

from duru.local.legacy import import_legacy  # noqa: E402


def make_source(path: Path, notes: int) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
        "from pathlib import Path; from legacy_factory import make_legacy_db; "
        f"make_legacy_db(Path({str(path)!r}), seed=1, notes={notes})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main(notes: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="duru-bench-import-"))
    source = tmp / "app.sqlite"
    make_source(source, notes)
    print(f"source: {notes:,} notes, {source.stat().st_size / 1e6:.1f} MB")

    wall, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(source)
    rows = sum(len(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in TABLES)
    conn.close()
    bare_wall, bare_cpu = time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = time.perf_counter(), time.process_time()
    report = import_legacy(source, tmp / "duru.sqlite")
    took_wall, took_cpu = time.perf_counter() - wall, time.process_time() - cpu
    report.check()

    for name, t in report.tables.items():
        print(
            f"  {name:<16} read {t.read:>7} imported {t.imported:>7}"
            f" merged {t.merged:>6} quarantined {t.quarantined:>5}"
        )
    print(
        f"import_legacy: wall {took_wall:.1f} s, cpu {took_cpu:.1f} s,"
        f" {rows / took_wall:,.0f} rows/s"
    )
    print(f"bare SELECT * of every table: wall {bare_wall:.2f} s, cpu {bare_cpu:.2f} s")
    print(f"ratio (wall): {took_wall / bare_wall:.1f}x; (cpu): {took_cpu / bare_cpu:.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"target {(tmp / 'duru.sqlite').stat().st_size / 1e6:.1f} MB; peak RSS {peak:.0f} MB")
    print("load average:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
