"""Benchmark: the device store's hot paths at 100k notes against bare sqlite3, in one process.

Run: /work/.venv/bin/python benchmarks/bench_device.py [--notes 100000] [--creates 5000]

The database comes from gen_device.py (built once, then cached) and is copied
to a scratch folder, so every run starts from the same file. Reads alternate
duru's call and the bare reference call by call, so load from elsewhere on
the machine hits both alike. References:

- list recent: the bare indexed ``SELECT`` of the same columns (pinned first);
- search: bare FTS5 ``SELECT rowid ... MATCH ? ORDER BY rank LIMIT 20`` (rank
  set to duru's bm25 weights), against duru's top 20 with titles and snippets,
  for a typical two-word query and for two words that are in every note
  (the reference scores all 99k matches; duru scores the newest
  ``RANK_CANDIDATES`` of a query matching more, see ``duru.local.search``);
- open tasks: the bare indexed ``SELECT`` duru's first walk runs;
- create a note (note row, FTS row, outbox row: ``store.notes.create``): the
  same call on a copy left at SQLite's defaults (WAL auto-checkpoint at 1000
  pages, FTS5 automerge 4, crisismerge 16), against duru's write path
  (checkpoints and merges moved to a Maintainer thread on a connection of
  its own, as ``DeviceStore.open(background=True)`` sets it up). Two runs
  each: one continuous stream of creates (no pause ever, so the maintainer
  can only checkpoint and the index falls back on crisismerge), and the same
  number in bursts of ``--burst`` creates with ``--pause`` seconds between
  (the shape of a person typing or a sync applying pages). The two stores' creates
  alternate call by call, so both meet the same load from elsewhere.

Every figure is per call, in milliseconds of wall-clock time; the last two
columns are the calling thread's CPU time (p50, p99), which shows the work
itself when other load on the machine stretches the wall-clock tail (CPU time
leaves out waits for the disk, so it is context, never the verdict; the
"machine noise" line times pure CPU work for the same reason). PASS/FAIL lines compare with the
targets (all ratios at the p99, as the issue states them): recent and tasks within 5x
the bare query, search within 2x, create at most 0.1x the defaults; and at the
p99: recent < 100 ms, search < 200 ms, tasks < 100 ms, create < 50 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gen_device import _Writer, cache_dir, device_db

from duru.local.db import Database
from duru.local.maintenance import Maintainer, configure_writer, index_shape, tune_index
from duru.local.schema import fts_table, quote, where_sql
from duru.local.search import ensure_rank
from duru.local.store import DeviceStore
from duru.model import NOTE, TASK

Call = Callable[[], object]


@dataclass
class Stats:
    """Per-call wall-clock times, and the calling thread's CPU time for each call."""

    samples: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)

    def time(self, call: Call) -> None:
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        call()
        self.cpu.append(time.thread_time_ns() - cpu)
        self.samples.append(time.perf_counter_ns() - wall)

    def q(self, quantile: float, samples: list[int] | None = None) -> float:
        """Nearest-rank quantile in milliseconds."""
        ordered = sorted(self.samples if samples is None else samples)
        index = min(len(ordered) - 1, max(0, round(quantile * len(ordered)) - 1))
        return ordered[index] / 1e6

    @property
    def p50(self) -> float:
        return self.q(0.50)

    @property
    def p95(self) -> float:
        return self.q(0.95)

    @property
    def p99(self) -> float:
        return self.q(0.99)

    @property
    def max(self) -> float:
        return max(self.samples) / 1e6

    def row(self, name: str) -> str:
        cpu = f"{self.q(0.5, self.cpu):10.3f}{self.q(0.99, self.cpu):10.3f}" if self.cpu else ""
        return f"  {name:34}{self.p50:10.3f}{self.p95:10.3f}{self.p99:10.3f}{self.max:10.3f}{cpu}"


VERDICTS: list[str] = []


def verdict(ok: bool, text: str) -> None:
    line = f"{'PASS' if ok else 'FAIL'}  {text}"
    VERDICTS.append(line)
    print(line)


def interleaved(duru: Call, bare: Call, iterations: int) -> tuple[Stats, Stats]:
    """Time both calls alternately (order swapped every call) after a warm-up."""
    for _ in range(max(3, iterations // 10)):
        duru()
        bare()
    d, b = Stats(), Stats()
    gc.collect()
    for i in range(iterations):
        pair = ((duru, d), (bare, b)) if i % 2 == 0 else ((bare, b), (duru, d))
        for call, out in pair:
            out.time(call)
    return d, b


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'':34}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}{'cpu p50':>10}{'cpu p99':>10}")


def compare(name: str, d: Stats, b: Stats, *, at: str, limit: float, absolute: float) -> None:
    print(d.row(f"duru {name}"))
    print(b.row(f"bare {name}"))
    ratio_p50, ratio_p99 = d.p50 / b.p50, d.p99 / b.p99
    print(f"  ratio duru/bare: p50 {ratio_p50:.2f}x  p99 {ratio_p99:.2f}x")
    ratio = ratio_p50 if at == "p50" else ratio_p99
    verdict(ratio <= limit, f"{name}: duru/bare {ratio:.2f}x at {at} (target <= {limit}x)")
    verdict(d.p99 < absolute, f"{name}: duru p99 {d.p99:.1f} ms (target < {absolute:.0f} ms)")


def pick_queries(conn: sqlite3.Connection, live: int) -> tuple[str, str]:
    """A typical two-word query (each word in 2-20% of notes) and two words in every note."""
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, notes_fts, row)"
    )
    df = dict(conn.execute("SELECT term, doc FROM temp.vocab").fetchall())
    typical = [
        w for w in _Writer(random.Random(0)).words[60:] if 0.02 * live <= df.get(w, 0) <= 0.2 * live
    ]
    everywhere = sorted(df, key=lambda t: -df[t])[:2]
    return " ".join(typical[:2]), " ".join(everywhere)


def reads(store: DeviceStore, bare: sqlite3.Connection, iterations: int) -> None:
    live = int(bare.execute("SELECT count(*) FROM notes WHERE deleted = 0").fetchone()[0])
    typical, everywhere = pick_queries(bare, live)
    note_cols = ", ".join(quote(c) for c in NOTE.field_names)
    recent_sql = (
        f"SELECT {note_cols} FROM notes WHERE {where_sql(NOTE, {'deleted': False})}"
        " ORDER BY is_pinned DESC, updated_at DESC LIMIT 50"
    )
    task_cols = ", ".join(f"x.{quote(c)}" for c in TASK.field_names)
    open_where = where_sql(TASK, {"deleted": False, "status": ("open", "in_progress")}, "x.")
    tasks_sql = (
        f"SELECT {task_cols} FROM tasks x WHERE {open_where} AND x.due_date IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM notes n WHERE n.id = x.note_id AND n.deleted = 0)"
        " ORDER BY x.due_date, x.priority DESC LIMIT 50"
    )
    fts_sql = "SELECT rowid FROM notes_fts WHERE notes_fts MATCH ? ORDER BY rank LIMIT 20"
    ensure_rank(store.db)  # stores the rank weights, so bare ORDER BY rank uses them too
    store.search.query("warm")

    header(f"list 50 recent notes ({live} live notes)")
    d, b = interleaved(
        lambda: store.notes.list_recent(50), lambda: bare.execute(recent_sql).fetchall(), iterations
    )
    compare("list recent", d, b, at="p99", limit=5, absolute=100)

    header("list open tasks (50, due soonest)")
    d, b = interleaved(
        lambda: store.tasks.open_tasks(50), lambda: bare.execute(tasks_sql).fetchall(), iterations
    )
    compare("open tasks", d, b, at="p99", limit=5, absolute=100)

    for label, query, n in (("typical", typical, iterations), ("in every note", everywhere, 30)):
        count = bare.execute("SELECT count(*) FROM notes_fts WHERE notes_fts MATCH ?", [query])
        matches = count.fetchone()[0]
        header(f"search top 20, {label}: {query!r} ({matches} matching notes)")
        d, b = interleaved(
            lambda q=query: store.search.query(q),  # type: ignore[misc]
            lambda q=query: bare.execute(fts_sql, [q]).fetchall(),  # type: ignore[misc]
            n,
        )
        compare(f"search ({label})", d, b, at="p99", limit=2, absolute=200)


def create_runs(
    ours: DeviceStore, base: DeviceStore, count: int, burst: int, pause: float
) -> tuple[Stats, Stats]:
    """``count`` creates on each store, alternating call by call, pausing between bursts.

    Alternating keeps the duru store's writes back to back exactly as in a
    run of its own (the maintainer sees no pause inside a burst) while the
    machine's other load falls on both alike. The store that writes first
    after a pause also alternates, burst by burst: that create runs with cold
    CPU caches (on this VM about twice as long as the next), and the second
    store's runs after it has warmed SQLite's and Python's code.
    """
    writer = _Writer(random.Random(count + burst))
    texts = [(writer.title(), writer.body()) for _ in range(2 * count)]
    d, b = Stats(), Stats()
    gc.collect()
    for i in range(count):
        if i and i % burst == 0:
            time.sleep(pause)
        ours_first = (i + i // burst) % 2 == 0
        pair = ((ours, d), (base, b)) if ours_first else ((base, b), (ours, d))
        for j, (store, out) in enumerate(pair):
            title, body = texts[2 * i + j]
            out.time(lambda s=store, t=title, x=body: s.notes.create(t, x))
    return d, b


def write_settings(db: Database) -> str:
    """The settings that decide where checkpoints and merges happen, as this connection has them."""
    config = dict(db.conn.execute(f"SELECT k, v FROM {quote(fts_table(NOTE) + '_config')}"))
    checkpoint = db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    merge = ", ".join(f"{k} {config.get(k, 'default')}" for k in ("automerge", "crisismerge"))
    return f"wal_autocheckpoint {checkpoint}, FTS5 {merge}"


def default_store(path: Path) -> DeviceStore:
    """A store on ``path`` at SQLite's and FTS5's checkpoint and merge defaults (no maintainer).

    ``DeviceStore.open`` would move merges and checkpoints off the write path
    (and persist the FTS5 part in the file): the reference must not have that.
    The one other setting duru's writer has, ``temp_store = MEMORY`` (no temp
    file for a savepoint's journal), is neither: the reference gets it too, so
    the two differ only where the issue says they should.
    """
    store = DeviceStore(Database.open(path))
    settings = write_settings(store.db)
    if settings != "wal_autocheckpoint 1000, FTS5 automerge default, crisismerge default":
        store.close()
        raise SystemExit(f"the reference copy is not at the defaults: {settings}")
    store.db.conn.execute("PRAGMA temp_store = MEMORY")
    return store


def creates(duru_path: Path, default_path: Path, count: int, burst: int, pause: float) -> None:
    with default_store(default_path) as default, DeviceStore.open(duru_path) as store:
        tune_index(store.db)
        configure_writer(store.db)
        print(f"\nduru store: {write_settings(store.db)}, and a Maintainer thread")
        print(f"reference store: {write_settings(default.db)} (SQLite's and FTS5's defaults)")
        temp_stores = [s.db.scalar("PRAGMA temp_store") for s in (store, default)]
        print(f"temp_store (2 = MEMORY): duru {temp_stores[0]}, reference {temp_stores[1]}")
        with Maintainer(store.db) as maintainer:
            maintainer.wait_settled(120)
            for label, size, rest in (("continuous", count, 0.0), ("in bursts", burst, pause)):
                shape = f"{count} creates" + (
                    f", bursts of {size} with {rest}s pauses" if rest else ", no pause"
                )
                header(f"create a note with FTS and outbox rows, {label} ({shape})")
                ours, base = create_runs(store, default, count, size, rest)
                print(ours.row("duru create"))
                print(base.row("create at SQLite/FTS5 defaults"))
                print(
                    f"  maintainer so far: {maintainer.checkpoints} checkpoints,"
                    f" {maintainer.wal_restarts} WAL restarts,"
                    f" {maintainer.merge_steps} merge steps (longest"
                    f" {maintainer.longest_step * 1000:.1f} ms);"
                    f" index now {index_shape(store.db.conn)}"
                )
                ratio = ours.p99 / base.p99
                verdict(ratio <= 0.1, f"create {label}: p99 {ratio:.3f}x the defaults' (<= 0.1x)")
                verdict(ours.p99 < 50, f"create {label}: duru p99 {ours.p99:.1f} ms (< 50 ms)")
                maintainer.wait_settled(120)
        # Leaving the block stops the maintainer and raises the error that stopped it, if any.


def machine_noise(samples: int = 2000) -> None:
    """How much this machine alone stretches ~0.5 ms of pure CPU work (no I/O, no SQLite)."""

    def work() -> int:
        return sum(i * i for i in range(loops))

    loops, started = 1000, time.perf_counter()
    work()
    loops = max(1000, int(1000 * 0.0005 / max(time.perf_counter() - started, 1e-6)))
    out = Stats()
    for _ in range(samples):
        out.time(work)
    header("machine noise: the same ~0.5 ms of pure CPU work, timed again and again")
    print(out.row("pure CPU work"))
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        print(f"  /proc/pressure/cpu: {pressure.read_text().splitlines()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pause", type=float, default=0.3)
    parser.add_argument("--skip", choices=("reads", "creates"), help="leave one part out")
    args = parser.parse_args()
    source = device_db(args.notes, args.seed)
    size = source.stat().st_size / 1e6
    print(f"database: {source} ({size:.0f} MB), SQLite {sqlite3.sqlite_version}")
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs")
    machine_noise()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        duru_path = Path(shutil.copyfile(source, Path(tmp) / "duru.sqlite"))
        default_path = Path(shutil.copyfile(source, Path(tmp) / "default.sqlite"))
        if args.skip != "reads":
            with DeviceStore.open(duru_path) as store:
                bare = sqlite3.connect(duru_path, isolation_level=None)
                try:
                    reads(store, bare, args.iterations)
                finally:
                    bare.close()
        if args.skip != "creates":
            creates(duru_path, default_path, args.creates, args.burst, args.pause)
    print(f"\nload average at end: {os.getloadavg()}")
    print("\nsummary:")
    for line in VERDICTS:
        print(f"  {line}")


if __name__ == "__main__":
    main()
