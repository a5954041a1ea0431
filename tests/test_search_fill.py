"""Rows inserted under ``indexed_in_bulk`` are indexed exactly as the trigger would index
them: FTS5's integrity check passes, search finds them (prefixes too), trashed rows stay
out, and a failure in the block leaves the rows, the index and the trigger as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from duru.local import Database, DeviceStore
from duru.local.rows import columns
from duru.local.search_fill import BULK_INDEX_MIN, indexed_in_bulk
from duru.model import NOTE, complete_row, new_id, now_ms
from duru.sync.device_rows import insert_rows

TRIGGERS = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"


def _rows(count: int, start: int = 0, trashed_every: int = 5) -> list[tuple[object, ...]]:
    out = []
    for i in range(start, start + count):
        row = complete_row(
            NOTE,
            {
                "id": new_id(),
                "title": f"bulk {i} ünïcode",
                "body": f"word{i} common Zürich",
                "deleted": i % trashed_every == 0,
            },
            now_ms(),
        )
        out.append(tuple(row[f.name] for f in NOTE.fields))
    return out


def _check(db: Database) -> None:
    db.conn.execute("INSERT INTO notes_fts (notes_fts) VALUES ('integrity-check')")


def _hits(db: Database, query: str) -> int:
    return len(DeviceStore(db).search.query(query, limit=10_000))


def test_bulk_rows_are_indexed_like_trigger_rows(tmp_path: Path) -> None:
    with Database.open(tmp_path / "a.sqlite") as db:
        triggers = db.conn.execute(TRIGGERS).fetchall()
        with db.transaction():
            insert_rows(db, NOTE, _rows(10))  # by the trigger
        rows = _rows(200, start=10)
        with db.transaction(), indexed_in_bulk(db, NOTE, len(rows)):
            insert_rows(db, NOTE, rows)
        assert db.conn.execute(TRIGGERS).fetchall() == triggers
        _check(db)
        assert db.scalar("SELECT count(*) FROM notes") == 210
        assert _hits(db, "common") == 210 - 42  # every fifth is in the trash
        assert _hits(db, "zurich") == _hits(db, "common")
        assert _hits(db, "word1*") == _hits(db, "word1") + sum(
            1 for i in range(10, 210) if str(i).startswith("1") and i % 5
        )
        assert _hits(db, "word16") == 1 and _hits(db, "word20") == 0  # 20 is trashed
        # The trigger is back: later edits and deletes keep the index right.
        note_id = db.scalar("SELECT id FROM notes WHERE title = 'bulk 151 ünïcode'")
        DeviceStore(db).notes.edit(note_id, body="replaced")
        assert _hits(db, "word151") == 0 and _hits(db, "replaced") == 1
        _check(db)


def test_a_failure_in_the_block_leaves_everything_as_it_was(tmp_path: Path) -> None:
    with Database.open(tmp_path / "a.sqlite") as db:
        triggers = db.conn.execute(TRIGGERS).fetchall()
        rows = _rows(100)
        with pytest.raises(sqlite3.IntegrityError), db.transaction():
            with indexed_in_bulk(db, NOTE, len(rows)):
                insert_rows(db, NOTE, rows)
                db.conn.execute(
                    f"INSERT INTO notes ({columns(NOTE)}) VALUES"
                    f" ({', '.join('?' * len(NOTE.fields))})",
                    rows[0],  # the same id again
                )
        assert db.conn.execute(TRIGGERS).fetchall() == triggers
        assert db.scalar("SELECT count(*) FROM notes") == 0
        _check(db)
        with db.transaction():
            insert_rows(db, NOTE, _rows(3))  # the trigger indexes again
        assert _hits(db, "common") == 2
        _check(db)


def test_few_rows_go_through_the_trigger(tmp_path: Path) -> None:
    with Database.open(tmp_path / "a.sqlite") as db:
        rows = _rows(BULK_INDEX_MIN - 1, start=1, trashed_every=10**6)
        with db.transaction(), indexed_in_bulk(db, NOTE, len(rows)):
            insert_rows(db, NOTE, rows)
        assert _hits(db, "common") == len(rows)
        _check(db)
