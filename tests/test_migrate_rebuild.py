"""Table rebuilds and transforms on real device files: every row moved exactly or quarantined."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
from migrate_support import (
    TAG_LIMIT,
    TEST_MIGRATIONS,
    WORDS,
    fast_config,
    make_device_file,
    set_of,
)

from duru.errors import ValidationFailed
from duru.local.db import Database
from duru.migrate.ops import RebuildTable
from duru.migrate.sqlite.device_spec import table_spec
from duru.migrate.sqlite.engine import history, rollback, run, status
from duru.model import FOLDER, NOTE, TASK


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


@pytest.fixture
def device(tmp_path: Path) -> Path:
    return make_device_file(tmp_path / "device.db")


@pytest.fixture
def migrated(device: Path) -> tuple[Path, dict[str, list[tuple[object, ...]]]]:
    before = {
        "note_tags": rows(device, "SELECT rowid, * FROM note_tags ORDER BY rowid"),
        "tasks": rows(device, "SELECT rowid, * FROM tasks ORDER BY rowid"),
        "notes": rows(device, "SELECT rowid, * FROM notes ORDER BY rowid"),
        "note_links": rows(device, "SELECT rowid, * FROM note_links ORDER BY rowid"),
        "search": rows(device, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'quartz'"),
    }
    run(device, migrations=TEST_MIGRATIONS, config=fast_config())
    return device, before


def test_rebuild_keeps_each_row_or_quarantines_it_with_the_reason(
    migrated: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    path, before = migrated
    # note_tags is copied in key order: rows keep their values, not their rowids.
    after = {r[0]: r for r in rows(path, "SELECT * FROM note_tags")}
    quarantined = rows(
        path,
        "SELECT source_key, reason, row_json FROM quarantine WHERE source_table = 'note_tags'",
    )
    by_key = {k: (reason, json.loads(str(row))) for k, reason, row in quarantined}
    assert len(by_key) == len(quarantined)  # each rejected row exactly once
    too_long = [r for r in before["note_tags"] if len(str(r[3])) > TAG_LIMIT]
    assert too_long and len(quarantined) == len(too_long)
    for r in before["note_tags"]:
        if len(str(r[3])) > TAG_LIMIT:
            reason, row = by_key[str(r[1])]
            assert "CHECK constraint failed" in reason and row["tag"] == r[3]
            assert r[1] not in after
        else:
            assert after[r[1]] == r[1:]  # the same values in the same columns


def test_type_change_converts_every_value(
    migrated: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    path, before = migrated
    cols = [r[1] for r in rows(path, "PRAGMA table_info(tasks)")]
    at = cols.index("estimated_minutes") + 1
    old = {r[1]: r[at] for r in before["tasks"]}
    for task_id, value, kind in rows(
        path, "SELECT id, estimated_minutes, typeof(estimated_minutes) FROM tasks"
    ):
        original = old[task_id]
        assert value == (None if original is None else float(str(original)))
        assert kind == ("null" if original is None else "real")
    assert len(old) == rows(path, "SELECT count(*) FROM tasks")[0][0]


def test_rebuilt_notes_keep_search_working(
    migrated: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    path, before = migrated
    found = rows(path, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'quartz'")
    assert found == before["search"] and found
    words = rows(path, f"SELECT word_count = ({WORDS}) FROM notes")
    assert {w for (w,) in words} == {1}
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO notes (id, title, body) VALUES"
            " ('00000000-0000-4000-8000-000000000001', 'zebra crossing', 'fresh words')"
        )
    conn.close()
    assert rows(path, "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'zebra'") == [(1,)]


def test_indexes_triggers_and_constraints_come_back(
    migrated: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    path, _ = migrated
    schema = {n: s for n, s in rows(path, "SELECT name, sql FROM sqlite_schema")}
    spec = table_spec(NOTE)
    for ix in spec.indexes:
        assert schema[ix.name] == ix.sql()
    for name in ("notes_fts_ai", "notes_fts_ad", "notes_fts_au", "ix_tasks_deleted_due_date"):
        assert name in schema
    assert not [n for n in schema if n.startswith(("_duru_new_", "_duru_fence_"))]
    assert rows(path, "PRAGMA foreign_key_check") == []
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert f'CHECK (length("tag") <= {TAG_LIMIT})' in str(schema["note_tags"])


def test_transform_maps_rows_and_quarantines_rejects(
    migrated: tuple[Path, dict[str, list[tuple[object, ...]]]],
) -> None:
    path, before = migrated
    mapped = {r[0]: r for r in rows(path, "SELECT id, source_id, title_key FROM link_titles")}
    rejected = {
        str(k): reason
        for k, reason in rows(
            path,
            "SELECT source_key, reason FROM quarantine WHERE source_table = 'note_links'",
        )
    }
    assert len(mapped) + len(rejected) == len(before["note_links"])
    for r in before["note_links"]:
        link_id, source, title = r[1], r[2], str(r[3])
        if title.strip():
            assert mapped[link_id] == (link_id, source, title.strip().lower())
        else:
            assert rejected[str(link_id)] == "blank link title"


def test_fence_refuses_writes_while_a_table_is_being_copied(device: Path) -> None:
    run(device, migrations=TEST_MIGRATIONS, config=fast_config())
    conn = sqlite3.connect(device)
    point = conn.execute(
        "SELECT id FROM duru_migration_audit WHERE kind = 'chunk' AND step LIKE '%00.copy'"
        " ORDER BY id LIMIT 1 OFFSET 1"
    ).fetchone()[0]
    conn.close()
    rollback(device, to=point, migrations=TEST_MIGRATIONS)
    assert status(device, migrations=TEST_MIGRATIONS).active is not None
    conn = sqlite3.connect(device)
    with pytest.raises(sqlite3.IntegrityError, match="being migrated"):
        conn.execute("DELETE FROM note_tags")
    conn.close()


def test_children_of_a_quarantined_folder_follow_it(tmp_path: Path) -> None:
    path = tmp_path / "folders.db"
    with Database.open(path) as db:
        top = db.insert("folder", {"name": "top", "color": "red"}, outbox=False)
        mid = db.insert("folder", {"name": "mid", "parent_id": top["id"]}, outbox=False)
        low = db.insert("folder", {"name": "low", "parent_id": mid["id"]}, outbox=False)
        fine = db.insert("folder", {"name": "fine", "color": "#00ff00"}, outbox=False)
    base = table_spec(FOLDER)
    spec = dataclasses.replace(
        base,
        create=base.create.replace(
            '"color" TEXT', "\"color\" TEXT CHECK (color IS NULL OR color LIKE '#______')"
        ),
    )
    report = run(
        path,
        migrations=set_of(RebuildTable(spec, rejects_are_failures=False)),
        config=fast_config(),
    )
    assert report.status == "done"
    kept = {r[0] for r in rows(path, "SELECT id FROM folders")}
    assert kept == {fine["id"]}
    reasons = dict(rows(path, "SELECT source_key, reason FROM quarantine"))
    assert "CHECK constraint failed" in str(reasons[top["id"]])
    assert reasons[mid["id"]] == f"its parent parent_id {top['id']} was quarantined"
    assert reasons[low["id"]] == f"its parent parent_id {mid['id']} was quarantined"


def test_a_swap_that_would_orphan_children_rolls_back(device: Path) -> None:
    base = table_spec(NOTE)
    # Rejects notes that have tags: their tags would be left pointing at nothing.
    spec = dataclasses.replace(
        base,
        create=base.create.replace(
            '"title" TEXT', "\"title\" TEXT CHECK (title NOT LIKE 'note 1 %')"
        ),
    )
    before = rows(device, "SELECT rowid, * FROM notes ORDER BY rowid")
    with pytest.raises(ValidationFailed, match="foreign_key_check failed"):
        run(
            device,
            migrations=set_of(RebuildTable(spec, rejects_are_failures=False)),
            config=fast_config(),
        )
    # The swap was undone: the old table is still there, untouched.
    assert rows(device, "SELECT rowid, * FROM notes ORDER BY rowid") == before
    assert status(device, migrations=set_of()).active is not None
    rollback(device)
    assert rows(device, "SELECT count(*) FROM quarantine") == [(0,)]
    assert rows(device, "SELECT name FROM sqlite_schema WHERE name LIKE '_duru_%'") == []


@pytest.mark.parametrize(
    ("rank", "mmap_mb"), [("early", 1024), ("last", 1024), ("early", 0)], ids=str
)
def test_a_value_sqlite_would_convert_fails_the_chunk_compare(
    device: Path, rank: str, mmap_mb: int
) -> None:
    """A copied value that SQLite stores differently (text '7' into STRICT INTEGER becomes 7)
    is caught by the row-by-row compare, in a chunk the bridge's sample did not cover:
    early in the copy (awaited before the next chunk commits) or in its last chunk
    (awaited before the copy says it is done); with mapped reads and without."""
    ids = [str(r[0]) for r in rows(device, "SELECT id FROM tasks ORDER BY id")]
    stride = max(1, len(ids) // fast_config().sample_rows)
    assert stride > 1 and len(ids) > 200  # several chunks, and rows outside the sample
    at = 1 if rank == "early" else len(ids) - 2  # (at % stride) != 0: not sampled
    assert at % stride != 0
    convert = f"CASE WHEN id = '{ids[at]}' THEN CAST(position AS TEXT) ELSE position END"
    before = rows(device, "SELECT rowid, * FROM tasks ORDER BY rowid")
    rebuild = RebuildTable(table_spec(TASK), select={"position": convert})
    with pytest.raises(ValidationFailed, match="1 of .* copied rows differ from their source"):
        run(device, migrations=set_of(rebuild), config=fast_config(mmap_mb=mmap_mb))
    trail = [r for r in history(device)[-1].rows if r.kind == "chunk"]
    # Early: the chunk after the bad one did not commit. Last: the copy never said done.
    assert len(trail) == 1 if rank == "early" else len(trail) >= 2
    assert not [r for r in history(device)[-1].rows if r.step.endswith(".swap")]
    assert rows(device, "SELECT rowid, * FROM tasks ORDER BY rowid") == before
    rollback(device)
    assert rows(device, "SELECT name FROM sqlite_schema WHERE name LIKE '_duru_%'") == []
    assert rows(device, "SELECT rowid, * FROM tasks ORDER BY rowid") == before
