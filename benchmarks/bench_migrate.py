"""Benchmark: a chunked device table rebuild of 1M rows against a bare INSERT ... SELECT.

Run: /work/.venv/bin/python benchmarks/bench_migrate.py [--rows 1000000] [--trials 5]

The table is ``tasks`` (14 columns, text uuid key, foreign keys to ``notes``),
rebuilt by the engine for a type change (``estimated_minutes`` INTEGER ->
REAL). Per trial, on a fresh copy of the same file and in this process:

- bare: the copy as SQLite's 12-step procedure does it, one ``INSERT INTO
  new (cols) SELECT cols FROM old`` into the same new table, foreign keys off;
- bare, chunked: the same statement over each of the engine's chunks (same
  order, same bounds), one commit each, foreign keys on, nothing else: what
  chunking alone costs;
- duru: the engine's copy step (chunks from 50 rows adapting to 0.25 s, in key
  order, each checked row by row against its source, quarantine on reject,
  an audit row and a rollback point per chunk, foreign keys enforced per row).
  The row-by-row check of a chunk runs on a second connection while the next
  chunk copies (``ChunkVerifier``); the time it worked is printed too, so the
  work moved onto the second core stays visible.

All three use the engine's connection settings (``RunConfig``): the same page
cache (``--cache-mb``) and the same memory-mapped reads (``--mmap-mb``; 0 turns
them off for all three), so the difference is the engine's work alone.

Overhead = duru copy time / bare time - 1 (target <= 30%), from the best and
the median trial (other processes' load only adds time, so the best trial is
the cleanest). Also printed: rows/s, p50/p95/p99 of the time per 1000 rows
over the chunks (duru vs bare, chunked), and the whole run with preflight,
backup, swap and cleanup.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from duru.local.db import Database
from duru.migrate.config import RunConfig
from duru.migrate.device_migrations import detect_version
from duru.migrate.migration import Migration, MigrationSet
from duru.migrate.ops import ChangeType, quote
from duru.migrate.progress import ProgressEvent
from duru.migrate.sqlite.device_spec import table_spec
from duru.migrate.sqlite.engine import history, run
from duru.model import TASK, Kind

_UUID = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||"
    " substr(lower(hex(randomblob(2))), 2) || '-a' || substr(lower(hex(randomblob(2))), 2)"
    " || '-' || lower(hex(randomblob(6)))"
)
NOTES = 10_000


def make_file(path: Path, rows: int) -> None:
    """A device file with ``rows`` tasks over 10 000 notes (indexes built after the load)."""
    with Database.open(path) as db:
        conn = db.conn
        conn.execute("PRAGMA cache_size = -262144")
        indexes = [
            str(r[0])
            for r in conn.execute(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'tasks'"
                " AND sql IS NOT NULL"
            )
        ]
        with db.transaction():
            for name in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'tasks'"
                " AND sql IS NOT NULL"
            ).fetchall():
                conn.execute(f"DROP INDEX {quote(name[0])}")
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                f" INSERT INTO notes (id, title, body) SELECT {_UUID}, 'note ' || i, 'body' FROM n",
                (NOTES,),
            )
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " INSERT INTO tasks (id, note_id, content, status, priority, position,"
                " estimated_minutes, due_date)"
                f" SELECT {_UUID}, (SELECT id FROM notes WHERE rowid = 1 + i % {NOTES}),"
                " 'task ' || i, i % 4, i % 4, i,"
                " CASE WHEN i % 3 = 0 THEN NULL ELSE i % 120 END,"
                " CASE WHEN i % 5 = 0 THEN NULL ELSE 1700000000000 + i * 1000 END FROM n",
                (rows,),
            )
            for sql in indexes:
                conn.execute(sql)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def migration() -> MigrationSet:
    fields = tuple(
        dataclasses.replace(f, type=Kind.FLOAT) if f.name == "estimated_minutes" else f
        for f in TASK.fields
    )
    change = ChangeType(
        "tasks",
        "estimated_minutes",
        "INTEGER",
        "REAL",
        up='"estimated_minutes" * 1.0',
        down='CAST("estimated_minutes" AS INTEGER)',
        spec=table_spec(dataclasses.replace(TASK, fields=fields)),
        source=table_spec(TASK),
    )
    m = Migration("bench_0002", "1", "2", (change,))
    return MigrationSet((m,), current="2", detect=detect_version, name="bench")


Span = tuple[object, object]


def bare(
    path: Path,
    spec_sql: str,
    columns: list[str],
    order: str,
    ranges: list[Span],
    cache_mb: int = RunConfig.cache_mb,
    mmap_mb: int = RunConfig.mmap_mb,
) -> tuple[float, list[tuple[int, float]]]:
    """The copy as one statement (no ranges; foreign keys off, as the 12-step procedure has
    it) or one per range of ``order`` with a commit each (foreign keys on, as in the engine).

    Returns seconds and (rows, ms) per statement; the new table is dropped again.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")  # the engine's page cache
    conn.execute(f"PRAGMA mmap_size = {mmap_mb * 1024 * 1024}")  # and its mapped reads
    conn.execute(f"PRAGMA foreign_keys = {'ON' if ranges else 'OFF'}")
    conn.execute(spec_sql)
    cols = ", ".join(quote(c) for c in columns)
    expr = ", ".join(
        '"estimated_minutes" * 1.0' if c == "estimated_minutes" else quote(c) for c in columns
    )
    sql = f'INSERT INTO "_bare" ({cols}) SELECT {expr} FROM "tasks"'
    pos = "rowid" if order == "rowid" else quote(order)
    laps: list[tuple[int, float]] = []
    start = time.perf_counter()
    for lo, hi in ranges or [(None, None)]:
        lap = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if not ranges:
            done = conn.execute(sql).rowcount
        elif lo is None:
            done = conn.execute(f"{sql} WHERE {pos} <= ? ORDER BY {pos}", (hi,)).rowcount
        else:
            done = conn.execute(
                f"{sql} WHERE {pos} > ? AND {pos} <= ? ORDER BY {pos}", (lo, hi)
            ).rowcount
        conn.execute("COMMIT")
        laps.append((done, (time.perf_counter() - lap) * 1000))
    seconds = time.perf_counter() - start
    conn.execute('DROP TABLE "_bare"')
    conn.close()
    return seconds, laps


@dataclasses.dataclass
class Laps:
    """Rows and milliseconds of each chunk of the engine's copy, from its progress events."""

    step: str = ""
    done: int = 0
    at: float = 0.0
    laps: list[tuple[int, float]] = dataclasses.field(default_factory=list)

    def __call__(self, event: ProgressEvent) -> None:
        if not event.step.endswith(".copy"):
            return
        now = time.perf_counter()
        if event.kind == "advance":
            self.laps.append((event.done - self.done, (now - self.at) * 1000))
        self.done, self.at = event.done, now


def chunk_ranges(path: Path) -> tuple[str, list[Span], float]:
    """The order of the engine's copy, the ranges of its chunks and the seconds its
    verifier compared rows (beside the copy), from the audit."""
    trail = history(path)[-1].rows
    copy = next(r for r in trail if r.kind == "step" and r.step.endswith(".copy"))
    chunks = [r for r in trail if r.kind == "chunk"]
    ranges: list[Span] = [(c.details["from"], c.details["hwm"]) for c in chunks]
    return str(copy.details["order"]), ranges, float(copy.details["verify_seconds"])


def per_k(laps: list[tuple[int, float]]) -> list[float]:
    """Milliseconds per 1000 rows of each chunk, sorted."""
    return sorted(ms * 1000 / rows for rows, ms in laps if rows)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--cache-mb", type=int, default=RunConfig.cache_mb)
    parser.add_argument("--mmap-mb", type=int, default=RunConfig.mmap_mb)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="duru-bench-migrate-"))
    try:
        base = folder / "base.db"
        t0 = time.perf_counter()
        make_file(base, args.rows)
        size = base.stat().st_size / 1e6
        print(f"file: {args.rows:,} tasks, {size:.0f} MB, made in {time.perf_counter() - t0:.1f}s")
        op = migration().migrations[0].ops[0]
        assert isinstance(op, ChangeType) and op.spec is not None
        spec_sql, columns = op.spec.create_as("_bare"), list(op.spec.columns)
        duru_s: list[float] = []
        bare_s: list[float] = []
        chunked_s: list[float] = []
        whole: list[float] = []
        verify: list[float] = []
        duru_laps: list[tuple[int, float]] = []
        bare_laps: list[tuple[int, float]] = []
        for trial in range(args.trials):
            path = folder / f"trial{trial}.db"
            shutil.copyfile(base, path)
            bare_s.append(
                bare(path, spec_sql, columns, "rowid", [], args.cache_mb, args.mmap_mb)[0]
            )
            laps = Laps()
            start = time.perf_counter()
            config = RunConfig(cache_mb=args.cache_mb, mmap_mb=args.mmap_mb)
            report = run(path, migrations=migration(), config=config, progress=laps)
            whole.append(time.perf_counter() - start)
            duru_s.append(next(s.seconds for s in report.steps if s.key.endswith(".copy")))
            duru_laps += laps.laps
            order, ranges, verified = chunk_ranges(path)
            verify.append(verified)
            _remove(folder, f"trial{trial}.db")
            shutil.copyfile(base, path)
            seconds, chunked = bare(
                path, spec_sql, columns, order, ranges, args.cache_mb, args.mmap_mb
            )
            chunked_s.append(seconds)
            bare_laps += chunked
            _remove(folder, f"trial{trial}.db")
            print(
                f"trial {trial}: bare {bare_s[-1]:.2f}s  bare chunked {chunked_s[-1]:.2f}s"
                f"  duru copy {duru_s[-1]:.2f}s ({len(ranges)} chunks by {order};"
                f" row-by-row compare {verified:.2f}s beside it)"
                f"  duru whole run {whole[-1]:.2f}s"
            )
        # Neighbours' load only ever adds time: the best trial is the least disturbed.
        for name, pick in (("best", min), ("median", statistics.median)):
            b, c, d = pick(bare_s), pick(chunked_s), pick(duru_s)
            print(
                f"{name} of {args.trials}: rows/s bare {args.rows / b:,.0f}  bare chunked"
                f" {args.rows / c:,.0f}  duru copy {args.rows / d:,.0f};  duru copy vs bare"
                f" INSERT ... SELECT {d / b - 1:+.1%} (target <= +30%), vs bare chunked"
                f" {d / c - 1:+.1%} (validation, quarantine checks, audit, rollback points)"
            )
        dk, bk = per_k(duru_laps), per_k(bare_laps)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            print(
                f"ms per 1000 rows, {name}: duru {pct(dk, q):.2f}  bare chunked {pct(bk, q):.2f}"
                f"  ratio {pct(dk, q) / pct(bk, q):.2f}"
            )
        print(
            "whole run (preflight, verified backup, bridge, copy, swap, cleanup):"
            f" {statistics.median(whole):.1f}s"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove(folder: Path, name: str) -> None:
    for extra in folder.glob(name + "*"):
        if extra.is_dir():
            shutil.rmtree(extra)
        else:
            extra.unlink()


if __name__ == "__main__":
    main()
