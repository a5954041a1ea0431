"""A generated device file and a test-only migration set (schema 1 -> 2) for the engine's tests.

The migration exercises every kind of step on real data: a rebuild that
adds a constraint some rows break (quarantined), a type change, a rebuild of
the searchable ``notes`` table (FTS re-created), a data transform into a new
table through a Python mapper, plain DDL and a meta value.

Run as a script it is the worker the SIGKILL tests start:
``python tests/migrate_support.py run|run-device <db>`` prints ``ready`` once
imported, then migrates (with this test set, or with duru's device migrations).
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from duru.local.db import Database
from duru.migrate.config import RunConfig
from duru.migrate.device_migrations import detect_version
from duru.migrate.migration import Migration, MigrationSet
from duru.migrate.ops import (
    AddColumn,
    AddIndex,
    ChangeType,
    CreateTable,
    Generated,
    IndexSpec,
    RebuildTable,
    Rejected,
    RenameColumn,
    SetMeta,
    TableSpec,
    TransformData,
)
from duru.migrate.sqlite.device_spec import table_spec
from duru.model import NOTE, NOTE_TAG, TASK, Field, Kind, Row

TAG_LIMIT = 64

# note_tags as schema 2 wants it: the model's table plus a length rule.
_TAGS = table_spec(NOTE_TAG)
TAGS_V2 = dataclasses.replace(
    _TAGS,
    create=_TAGS.create.replace(
        '"tag" TEXT NOT NULL', f'"tag" TEXT NOT NULL CHECK (length("tag") <= {TAG_LIMIT})'
    ),
)

# tasks with estimated_minutes as REAL.
TASKS_V1 = table_spec(TASK)
_TASK_V2 = dataclasses.replace(
    TASK,
    fields=tuple(
        dataclasses.replace(f, type=Kind.FLOAT) if f.name == "estimated_minutes" else f
        for f in TASK.fields
    ),
)
TASKS_V2 = table_spec(_TASK_V2)

# notes with a word count derived from the body.
_NOTE_V2 = dataclasses.replace(
    NOTE, fields=(*NOTE.fields, Field("word_count", Kind.INT, default=0))
)
NOTES_V2 = table_spec(_NOTE_V2)
WORDS = (
    "CASE WHEN trim(\"body\") = '' THEN 0 ELSE"
    " length(trim(\"body\")) - length(replace(trim(\"body\"), ' ', '')) + 1 END"
)

LINK_TITLES = TableSpec(
    name="link_titles",
    create=(
        'CREATE TABLE "link_titles" (\n    "id" TEXT PRIMARY KEY,\n'
        '    "source_id" TEXT NOT NULL REFERENCES "notes" ("id") ON DELETE CASCADE,\n'
        '    "title_key" TEXT NOT NULL CHECK (length("title_key") > 0)\n) STRICT'
    ),
    columns=("id", "source_id", "title_key"),
    key="id",
    indexes=(IndexSpec("ix_link_titles_title_key", "link_titles", ("title_key",)),),
)


class TitleKeys:
    """Maps note_links to link_titles: a lower-cased, trimmed title; blank ones rejected."""

    name = "title keys"

    def map_rows(self, conn: object, rows: Sequence[Row]) -> list[Row | Rejected]:
        out: list[Row | Rejected] = []
        for r in rows:
            key = str(r["target_title"]).strip().lower()
            if not key:
                out.append(Rejected(str(r["id"]), "blank link title", dict(r)))
            else:
                out.append({"id": r["id"], "source_id": r["source_id"], "title_key": key})
        return out


TEST_OPS = (
    RebuildTable(TAGS_V2, source=_TAGS, rejects_are_failures=False, why="tags of 64 characters"),
    ChangeType(
        "tasks",
        "estimated_minutes",
        "INTEGER",
        "REAL",
        up='"estimated_minutes" * 1.0',
        down='CAST("estimated_minutes" AS INTEGER)',
        spec=TASKS_V2,
        source=TASKS_V1,
    ),
    AddColumn("saved_searches", "archived", "INTEGER NOT NULL DEFAULT 0"),
    AddIndex(IndexSpec("ix_tasks_deleted_due_date", "tasks", ("deleted", "due_date"))),
    RebuildTable(NOTES_V2, select={"word_count": WORDS}, why="word counts"),
    CreateTable(LINK_TITLES),
    TransformData("note_links", "link_titles", TitleKeys(), rejects_are_failures=False),
    RenameColumn("saved_searches", "archived", "is_archived"),
    SetMeta("test_marker", Generated.UUID),
)

MIGRATION = Migration("0002_test", "1", "2", TEST_OPS, "test-only: every kind of step")
TEST_MIGRATIONS = MigrationSet((MIGRATION,), current="2", detect=detect_version, name="test")


def set_of(*ops: Any, mid: str = "0002_t", target: str = "2") -> MigrationSet:
    """A one-migration set (schema 1 -> ``target``) with ``ops``."""
    m = Migration(mid, "1", target, tuple(ops))
    return MigrationSet((m,), current=target, detect=detect_version, name="test")


def make_device_file(
    path: Path,
    *,
    notes: int = 400,
    tags_per_note: int = 2,
    tasks_per_note: int = 1,
    links_per_note: int = 1,
    bad_tag_every: int = 97,
    seed: int = 7,
) -> Path:
    """A schema 1 device file full of generated rows (some tags too long for schema 2)."""
    rng = random.Random(seed)
    with Database.open(path) as db, db.transaction():
        note_ids = []
        for i in range(notes):
            words = " ".join(rng.choice(WORD_LIST) for _ in range(rng.randint(0, 12)))
            row = db.insert(
                "note",
                {
                    "title": f"note {i} {rng.choice(WORD_LIST)}",
                    "body": words,
                    "is_pinned": i % 17 == 0,
                    "deleted": i % 23 == 0,
                },
                outbox=False,
            )
            note_ids.append(row["id"])
        n = 0
        for i, note_id in enumerate(note_ids):
            for t in range(tags_per_note):
                n += 1
                tag = "x" * (TAG_LIMIT + 5) if n % bad_tag_every == 0 else f"tag{(i + t) % 50}-{t}"
                db.insert("note_tag", {"note_id": note_id, "tag": tag}, outbox=False)
            for k in range(tasks_per_note):
                est = rng.choice([None, 5, 30, 90])
                db.insert(
                    "task",
                    {
                        "note_id": note_id,
                        "content": f"task {i}.{k}",
                        "estimated_minutes": est,
                        "position": k,
                        "due_date": rng.choice([None, 1_700_000_000_000 + i]),
                    },
                    outbox=False,
                )
            for _ in range(links_per_note):
                title = "" if rng.random() < 0.01 else f"  Note {rng.randrange(notes)} "
                db.insert(
                    "note_link",
                    {"source_id": note_id, "target_title": title},
                    outbox=False,
                )
        for s in range(5):
            db.insert("saved_search", {"name": f"search {s}", "query": f"tag{s}"}, outbox=False)
    return path


WORD_LIST = ("alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "maple", "quartz")

BOOKKEEPING = ("duru_migration_audit", "duru_migration_runs", "duru_migration_progress")


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every user table's rows (with rowid), quarantine without ids and times; for equality.

    FTS tables and their shadow tables are left out (they are derived).
    """
    conn = sqlite3.connect(path)
    conn.text_factory = _text_or_bytes
    try:
        virtual = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE sql LIKE 'CREATE VIRTUAL TABLE%'"
            )
        ]
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in names:
            if name in BOOKKEEPING or any(name == v or name.startswith(v + "_") for v in virtual):
                continue
            if name == "quarantine":
                sql = (
                    "SELECT source, source_table, source_key, reason, row_json FROM quarantine"
                    " ORDER BY source_table, source_key, reason, row_json"
                )
            elif name == "duru_meta":
                sql = (
                    "SELECT key, value FROM duru_meta WHERE key NOT IN ('test_marker') ORDER BY key"
                )
            else:
                sql = f'SELECT rowid, * FROM "{name}" ORDER BY rowid'
            out[name] = [tuple(r) for r in conn.execute(sql)]
        return out
    finally:
        conn.close()


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def schema(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every schema object but the engine's own bookkeeping."""
    conn = sqlite3.connect(path)
    try:
        return [
            (str(t), str(n), str(s))
            for t, n, s in conn.execute(
                "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
                " AND name NOT LIKE '%duru_migration%' ORDER BY type, name"
            )
        ]
    finally:
        conn.close()


def fast_config(**kw: Any) -> RunConfig:
    """Defaults for tests: small samples, no latency stop unless asked."""
    base: dict[str, Any] = {"sample_rows": 50, "latency_factor": 1e9}
    base.update(kw)
    return RunConfig(**base)


def _worker(argv: list[str]) -> int:
    from duru.migrate.device_migrations import DEVICE_MIGRATIONS
    from duru.migrate.sqlite.engine import run

    command, db = argv[0], Path(argv[1])
    print("ready", flush=True)
    config = fast_config(target_chunk_seconds=0.02)
    migrations = DEVICE_MIGRATIONS if command == "run-device" else TEST_MIGRATIONS
    run(db, migrations=migrations, config=config)
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
