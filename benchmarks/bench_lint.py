"""Benchmark the migration linter: per-file cost over 1,000 generated migrations, and start-up.

    .venv/bin/python benchmarks/bench_lint.py [--files 1000] [--runs 5]

Generates a folder of migrations (PostgreSQL .sql, SQLite .sql, Dart and Python
sources, about 8 statements each, a mix of safe and dangerous ones), lints it in
process several times and prints the wall time per file (p50/p95/p99 over the
runs, and files/s). Then times CLI start-up in fresh processes: ``duru --help``,
``duru migrate lint`` on one file, and a bare ``python -c pass`` as the reference
measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG = """SET lock_timeout = '5s'; SET statement_timeout = '30s';
ALTER TABLE notes_{n} ADD COLUMN pinned boolean NOT NULL DEFAULT false;
CREATE INDEX CONCURRENTLY notes_{n}_updated ON notes_{n} (user_id, updated_at);
ALTER TABLE notes_{n} ADD CONSTRAINT notes_{n}_fk FOREIGN KEY (folder_id)
  REFERENCES folders (id) NOT VALID;
ALTER TABLE notes_{n} VALIDATE CONSTRAINT notes_{n}_fk;
UPDATE notes_{n} SET pinned = true WHERE id IN (SELECT id FROM notes_{n} LIMIT 1000);
CREATE INDEX notes_{n}_title ON notes_{n} (title);
COMMENT ON COLUMN notes_{n}.pinned IS 'shown first';
"""
SQLITE = """PRAGMA foreign_keys=OFF;
BEGIN;
CREATE TABLE notes_{n}_new (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT);
INSERT INTO notes_{n}_new (id, title, body) SELECT id, title, body FROM notes_{n};
DROP TABLE notes_{n};
ALTER TABLE notes_{n}_new RENAME TO notes_{n};
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys=ON;
"""
DART = """Future<void> upgrade{n}(Database db) async {{
  await db.execute('ALTER TABLE local_notes ADD COLUMN pinned_{n} INTEGER NOT NULL DEFAULT 0');
  await db.execute('CREATE INDEX IF NOT EXISTS idx_{n} ON local_notes (pinned_{n})');
  await db.execute('UPDATE local_notes SET pinned_{n} = 1 WHERE id = ?', [id]);
  await db.execute('DELETE FROM note_tags WHERE note_id NOT IN (SELECT id FROM local_notes)');
}}
"""
PYTHON = '''"""Server migration {n}."""


def up(cur) -> None:
    cur.execute("SET lock_timeout = '5s'")
    cur.execute("ALTER TABLE notes ADD COLUMN rank_{n} integer")
    cur.execute(f"CREATE INDEX CONCURRENTLY notes_rank_{n} ON notes (rank_{n})")
    cur.execute("ALTER TABLE notes ALTER COLUMN title TYPE text")
'''


def generate(folder: Path, count: int) -> None:
    """Write `count` migrations into subfolders of `folder`, a quarter of each kind."""
    kinds = [
        ("supabase/migrations", ".sql", PG),
        ("app/sqlite", ".sql", SQLITE),
        ("app/dart", ".dart", DART),
        ("server/python", ".py", PYTHON),
    ]
    for n in range(count):
        sub, suffix, template = kinds[n % len(kinds)]
        target = folder / sub
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{n:05d}_m{suffix}").write_text(template.format(n=n))


def bench_in_process(folder: Path, count: int, runs: int) -> None:
    from duru.migrate.lint import lint_paths

    per_file = []
    findings = 0
    for _ in range(runs):
        start = time.perf_counter()
        report = lint_paths([folder])
        per_file.append((time.perf_counter() - start) / count * 1000)
        findings = len(report.findings)
    _print("lint, ms per file", per_file)
    print(
        f"  {count / (statistics.median(per_file) * count / 1000):.0f} files/s, {findings} findings"
    )


def bench_startup(folder: Path, runs: int) -> None:
    """Fresh processes. A file is linted with its folder as context, so linting one file
    of a 250-file folder parses the folder: both cases are timed."""
    duru = Path(sys.executable).with_name("duru")
    alone = folder / "alone" / "0001_m.sql"
    alone.parent.mkdir()
    alone.write_text(PG.format(n=1))
    crowded = next((folder / "supabase" / "migrations").iterdir())
    lint = [str(duru), "migrate", "lint"]
    commands = {
        "python -c pass (reference)": [sys.executable, "-c", "pass"],
        "duru --help": [str(duru), "--help"],
        "duru migrate lint, file alone in its folder": [*lint, str(alone)],
        "duru migrate lint, file in a 250-file folder": [*lint, str(crowded)],
    }
    for title, command in commands.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False)
            times.append((time.perf_counter() - start) * 1000)
        _print(f"start-up, {title}, ms", times)


def _print(title: str, values: list[float]) -> None:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    print(f"{title}: p50 {pick(0.5):.2f}  p95 {pick(0.95):.2f}  p99 {pick(0.99):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, args.files)
        bench_in_process(folder, args.files, args.runs)
        bench_startup(folder, args.runs)


if __name__ == "__main__":
    main()
