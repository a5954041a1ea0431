"""Build (and cache) a realistic device database of N notes for the benchmarks.

Run: /work/.venv/bin/python benchmarks/gen_device.py [--notes 100000] [--seed 7] [--force]
Use: ``from gen_device import device_db; path = device_db(100_000)``

What is in it (fixed seed, so the same parameters always give the same rows):
- notes with 1-2 KB bodies of sentences drawn from a Zipf-like vocabulary
  (5,000 words: ~200 real English words at the head, some with diacritics,
  then pronounceable made-up words), short titles, timestamps spread over two
  years; ~0.3% pinned, ~1% in the trash;
- ~300 folders nested up to six levels, ~85% of notes in one;
- 1-3 tags per note from 60 tags (Zipf-weighted);
- 2 tasks per note (``tasks_per_note``) with mixed status, priority and due dates;
- one outbox row per row, as the write path would have left it.

Rows are built with the model (``complete_row``, column lists from the entity)
and written in device storage form with ``executemany`` in one transaction.
The FTS triggers are dropped during the load and the index is then filled
with one ``INSERT INTO notes_fts ... SELECT`` of the live notes, after which
the triggers are re-created from ``duru.local.schema`` and the index is
optimized into one segment. The load runs without a journal or fsync (a
half-built file is deleted, never used). (FTS5's ``'rebuild'`` command is not used: with
external content it indexes every row of ``notes``, the trash included, which
the triggers never do, and deleting such an entry later would corrupt the
index.) Finally ANALYZE, and the file is switched back to WAL mode.

The file is cached under ``$DURU_BENCH_CACHE`` (default ``~/.cache/duru-bench``)
by notes, seed, generator version and model fingerprint; callers that write
to it must work on a copy (:func:`fresh_copy`).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
import uuid
from bisect import bisect
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from duru.local import Database
from duru.local.schema import SCHEMA_VERSION, create_search, fts_table, quote, where_sql
from duru.model import (
    FOLDER,
    MODEL_FINGERPRINT,
    NOTE,
    NOTE_FOLDER,
    NOTE_TAG,
    TASK,
    Entity,
    Row,
    complete_row,
)

GENERATOR_VERSION = 1
VOCABULARY_SIZE = 5_000
ZIPF_S = 1.07
# Fixed "now" of the data set, so a rebuilt cache is byte-for-byte the same rows.
NOW_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DAY_MS = 86_400_000

HEAD_WORDS = """
the of and to a in is it that for on was with as i be this at have you not are by from
or but we they an will can all would there their what so if about which when one up out
do has more time no just like some into them than then could our only other new also
note notes meeting design review project plan team idea ideas task tasks today tomorrow
week next call draft follow update budget client report launch release bug fix test
schedule deadline agenda summary question answer decision action research data api
server sync mobile app user users feature features issue priority roadmap sprint goal
goals migration database search index performance latency cache backup security key
password login account email phone travel trip flight hotel book books read reading
recipe dinner lunch coffee café shopping list grocery garden house rent money invoice
health doctor gym workout run running sleep family friends birthday gift party music
film movie photo photos camera article blog write writing chapter story résumé naïve
über jalapeño façade coöperate piñata crème brûlée déjà vu fiancée müller zoë ångström
""".split()

SYLLABLES = """ba be bi bo bu da de di do du fa fe fi fo ka ke ki ko ku la le li lo lu
ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu
va ve vi vo za ze zi zo an en in on un ar er ir or ur el il ol al""".split()

TAGS = (
    """work personal idea todo urgent reading recipe travel health finance meeting
project design research draft archive family home learning music film writing code bug
review later someday errands garden fitness shopping gift""".split()
    + [f"project-{i}" for i in range(1, 31)]
)


def vocabulary(size: int = VOCABULARY_SIZE) -> list[str]:
    """The words, most frequent first (independent of the data seed)."""
    rng = random.Random(1)
    words = list(dict.fromkeys(HEAD_WORDS))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_cum_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return list(accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


class _Writer:
    """Draws texts from the vocabulary with Zipf frequencies."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary()
        self.cum = zipf_cum_weights(len(self.words))
        self.total = self.cum[-1]

    def draw(self, k: int) -> list[str]:
        rng, cum, total, words = self.rng, self.cum, self.total, self.words
        return [words[bisect(cum, rng.random() * total)] for _ in range(k)]

    def body(self) -> str:
        target = self.rng.randint(1000, 2000)
        parts: list[str] = []
        size = 0
        while size < target:
            sentence = self.draw(self.rng.randint(6, 16))
            text = " ".join(sentence).capitalize() + "."
            parts.append(text)
            size += len(text) + 1
        return " ".join(parts)[:target]

    def title(self) -> str:
        # Titles favour content words over the stop words at the head.
        start = 30
        picks = [self.words[start + self.draw_rank(2000)] for _ in range(self.rng.randint(2, 6))]
        return " ".join(picks).capitalize()

    def draw_rank(self, n: int) -> int:
        return min(n - 1, bisect(self.cum, self.rng.random() * self.cum[n - 1]))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _folders(rng: random.Random, writer: _Writer, count: int) -> list[Row]:
    rows: list[Row] = []
    depth: dict[str, int] = {}
    for i in range(count):
        parents = [r["id"] for r in rows if depth[r["id"]] < 5]
        parent = rng.choice(parents) if i >= 30 and parents else None
        fid = _uuid(rng)
        depth[fid] = 0 if parent is None else depth[parent] + 1
        stamp = NOW_MS - rng.randint(400, 800) * DAY_MS
        rows.append(
            {
                "id": fid,
                "name": " ".join(writer.draw(2)).title(),
                "parent_id": parent,
                "sort_order": i,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
    return rows


def _note_rows(rng: random.Random, writer: _Writer, count: int) -> list[Row]:
    notes = []
    for _ in range(count):
        created = NOW_MS - rng.randint(0, 730 * DAY_MS)
        updated = min(NOW_MS, created + rng.randint(0, 30 * DAY_MS))
        notes.append(
            {
                "id": _uuid(rng),
                "title": writer.title(),
                "body": writer.body(),
                "is_pinned": rng.random() < 0.003,
                "deleted": rng.random() < 0.01,
                "created_at": created,
                "updated_at": updated,
            }
        )
    notes.sort(key=lambda r: r["created_at"])
    return notes


def _children(
    rng: random.Random,
    writer: _Writer,
    notes: Sequence[Row],
    folders: Sequence[Row],
    tasks_per_note: int = 2,
) -> Iterator[tuple[Entity, Row]]:
    tag_cum = zipf_cum_weights(len(TAGS), 0.9)
    folder_cum = zipf_cum_weights(len(folders), 0.6)
    statuses = ("open", "in_progress", "completed", "cancelled")
    priorities = ("low", "medium", "high", "urgent")
    for note in notes:
        nid, stamp = note["id"], note["updated_at"]
        common = {"created_at": note["created_at"], "updated_at": stamp}
        if rng.random() < 0.85:
            folder = folders[bisect(folder_cum, rng.random() * folder_cum[-1])]
            yield NOTE_FOLDER, {"note_id": nid, "folder_id": folder["id"], **common}
        tags = {TAGS[bisect(tag_cum, rng.random() * tag_cum[-1])] for _ in range(rng.randint(1, 3))}
        for tag in sorted(tags):
            yield NOTE_TAG, {"id": _uuid(rng), "note_id": nid, "tag": tag, **common}
        for position in range(tasks_per_note):
            status = rng.choices(statuses, (35, 10, 45, 10))[0]
            due = NOW_MS + rng.randint(-60, 60) * DAY_MS if rng.random() < 0.6 else None
            yield (
                TASK,
                {
                    "id": _uuid(rng),
                    "note_id": nid,
                    "content": " ".join(writer.draw(rng.randint(3, 8))).capitalize(),
                    "status": status,
                    "priority": rng.choice(priorities),
                    "due_date": due,
                    "completed_at": stamp if status == "completed" else None,
                    "position": position,
                    "deleted": rng.random() < 0.02,
                    **common,
                },
            )


def insert_sql(e: Entity) -> str:
    """``INSERT`` of every model field of ``e`` (the column list comes from the model)."""
    cols = ", ".join(quote(n) for n in e.field_names)
    marks = ", ".join("?" for _ in e.fields)
    return f"INSERT INTO {quote(e.table)} ({cols}) VALUES ({marks})"


def _load(
    db: Database, e: Entity, rows: Iterable[Row], outbox: list[tuple[Any, ...]], seed: int
) -> None:
    rng = random.Random(f"{seed}:{e.name}")
    stored = []
    for values in rows:
        row = complete_row(e, values, NOW_MS)
        stored.append(tuple(row.values()))
        outbox.append((_uuid(rng), e.name, row[e.key], "upsert", 0, row["updated_at"]))
    db.conn.executemany(insert_sql(e), stored)


def _fts_triggers(db: Database) -> list[str]:
    found = db.conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?", [NOTE.table]
    )
    return [str(r[0]) for r in found]


def build(path: Path, notes: int, seed: int, tasks_per_note: int = 2) -> None:
    """Write a fresh device database of ``notes`` notes at ``path``."""
    rng = random.Random(seed)
    writer = _Writer(rng)
    folders = _folders(rng, writer, 300)
    note_rows = _note_rows(rng, writer, notes)
    outbox: list[tuple[Any, ...]] = []
    with Database.open(path) as db:
        # A half-built file is thrown away, so the load needs no journal and no fsync.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -400000"):
            db.conn.execute(f"PRAGMA {pragma}")
        with db.transaction():
            for name in _fts_triggers(db):
                db.conn.execute(f"DROP TRIGGER {quote(name)}")
            _load(db, NOTE, note_rows, outbox, seed)
            _load(db, FOLDER, folders, outbox, seed)
            by_entity: dict[str, list[Row]] = {}
            entities = {e.name: e for e in (NOTE_FOLDER, NOTE_TAG, TASK)}
            for e, row in _children(rng, writer, note_rows, folders, tasks_per_note):
                by_entity.setdefault(e.name, []).append(row)
            for name, rows in by_entity.items():
                _load(db, entities[name], rows, outbox, seed)
            db.conn.executemany(
                "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                sorted(outbox, key=lambda o: o[5]),
            )
            _index_live_notes(db)
        db.conn.execute(f"INSERT INTO {fts_table(NOTE)}({fts_table(NOTE)}) VALUES ('optimize')")
        db.conn.execute("ANALYZE")
        db.conn.execute("PRAGMA journal_mode = WAL")


def _index_live_notes(db: Database) -> None:
    assert NOTE.search is not None
    fts = quote(fts_table(NOTE))
    cols = ", ".join(quote(c) for c in NOTE.search.fields)
    only = where_sql(NOTE, NOTE.search.only) or "1"
    db.conn.execute(
        f"INSERT INTO {fts} (rowid, {cols}) SELECT doc_id, {cols} FROM {quote(NOTE.table)}"
        f" WHERE {only}"
    )
    for stmt in create_search(NOTE):
        if stmt.startswith("CREATE TRIGGER"):
            db.conn.execute(stmt)


def cache_dir() -> Path:
    found = os.environ.get("DURU_BENCH_CACHE")
    return Path(found) if found else Path.home() / ".cache" / "duru-bench"


def device_db(
    notes: int = 100_000, seed: int = 7, *, force: bool = False, tasks_per_note: int = 2
) -> Path:
    """The cached database for these parameters, built first when missing."""
    tasks = "" if tasks_per_note == 2 else f"-t{tasks_per_note}"
    name = (
        f"device-n{notes}{tasks}-s{seed}-g{GENERATOR_VERSION}-v{SCHEMA_VERSION}-{MODEL_FINGERPRINT}"
    )
    path = cache_dir() / f"{name}.sqlite"
    if path.exists() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in (partial, *(Path(f"{partial}{s}") for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    build(partial, notes, seed, tasks_per_note)
    partial.replace(path)
    return path


def fresh_copy(source: Path, dest: Path) -> Path:
    """Copy a cached database to ``dest`` (for benchmarks that write)."""
    shutil.copyfile(source, dest)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tasks-per-note", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args()
    start = time.perf_counter()
    path = device_db(args.notes, args.seed, force=args.force, tasks_per_note=args.tasks_per_note)
    size = path.stat().st_size / 1e6
    print(f"{path} ({size:.0f} MB) ready in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
