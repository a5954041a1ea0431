"""The device store's live tables match the model, and its hot queries use their indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from duru.errors import NotFound, SchemaMismatch
from duru.local import Database, DeviceStore
from duru.local.schema import LiveColumn, expected_columns, expected_indexes
from duru.model import ENTITIES, Entity


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


def live_columns(conn: sqlite3.Connection, table: str) -> list[LiveColumn]:
    rows = conn.execute(f'PRAGMA table_xinfo("{table}")').fetchall()
    # (cid, name, type, notnull, default, pk, hidden); hidden columns are not the table's.
    return [LiveColumn(r[1], r[2], bool(r[3]), bool(r[5])) for r in rows if r[6] == 0]


def live_indexes(conn: sqlite3.Connection, table: str) -> set[str]:
    rows = conn.execute(f'PRAGMA index_list("{table}")').fetchall()
    return {r[1] for r in rows if r[3] == "c"}  # origin "c": made by CREATE INDEX


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.table)
def test_live_columns_and_indexes_are_what_the_model_derives(
    store: DeviceStore, entity: Entity
) -> None:
    conn = store.db.conn
    assert live_columns(conn, entity.table) == expected_columns(entity)
    assert live_indexes(conn, entity.table) == set(expected_indexes(entity))


def test_the_column_check_fails_when_a_table_drifts(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "device.db") as store:
        store.db.conn.execute("ALTER TABLE reminders ADD COLUMN legacy_extra TEXT")
        store.db.conn.execute("DROP INDEX ix_reminders_note_id")
        entity = next(e for e in ENTITIES if e.table == "reminders")
        assert live_columns(store.db.conn, "reminders") != expected_columns(entity)
        assert live_indexes(store.db.conn, "reminders") != set(expected_indexes(entity))


def test_open_close_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with pytest.raises(NotFound):
        DeviceStore.open(path, create=False)
    store = DeviceStore.open(path)
    assert isinstance(store.db, Database) and store.path == path
    note = store.notes.create("kept")
    store.close()
    with DeviceStore.open(path, create=False) as again:
        assert again.notes.get(note["id"])["title"] == "kept"
    with pytest.raises(sqlite3.ProgrammingError):
        again.db.conn.execute("SELECT 1")


def test_open_refuses_a_foreign_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE local_notes (id TEXT PRIMARY KEY)")
    conn.close()
    with pytest.raises(SchemaMismatch, match="duru import"):
        DeviceStore.open(path)


def plan(store: DeviceStore, sql: str, params: tuple[object, ...] = ()) -> list[str]:
    return [r[3] for r in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def captured_sql(store: DeviceStore, call: object) -> list[str]:
    """The SELECT statements a call runs (traced from the live connection)."""
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        call()  # type: ignore[operator]
    finally:
        store.db.conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def seeded(store: DeviceStore) -> dict[str, str]:
    note = store.notes.create("n", tags=["t"])
    folder = store.folders.create("f")
    store.folders.file_note(note["id"], folder["id"])
    store.tasks.create(note["id"], "t", due_date=5)
    store.reminders.create(note["id"], remind_at=10**13)
    store.saved_searches.create("s")
    store.templates.create("tpl")
    return {"note": note["id"], "folder": folder["id"]}


def plans_of(store: DeviceStore, call: object) -> list[str]:
    """Every plan line of every query the call ran, with its literal parameters inlined."""
    lines: list[str] = []
    for sql in captured_sql(store, call):
        lines += plan(store, sql)
    return lines


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("list_recent", "ix_notes_is_pinned_updated_at"),
        ("recent_page", "ix_notes_is_pinned_updated_at"),
        ("list_trash", "ix_notes_updated_at"),
        ("count", "ix_notes_is_pinned_updated_at"),
        ("open_tasks", "ix_tasks_due_date_priority"),
        ("tag_counts", "ix_note_tags_tag_note_id"),
        ("notes_in", "ix_note_folders_folder_id_note_id"),
        ("upcoming", "ix_reminders_remind_at"),
        ("saved_searches", "ix_saved_searches_is_pinned_sort_order"),
        ("templates", "ix_templates_sort_order"),
    ],
)
def test_hot_queries_walk_their_index_without_sorting_the_table(
    store: DeviceStore, name: str, index: str
) -> None:
    ids = seeded(store)
    calls = {
        "list_recent": lambda: store.notes.list_recent(10),
        "recent_page": lambda: store.notes.recent_page(1, store.notes.recent_page(1).cursor),
        "list_trash": lambda: store.notes.list_trash(10),
        "count": lambda: store.notes.count(),
        "open_tasks": lambda: store.tasks.open_tasks(10),
        "tag_counts": lambda: store.tags.counts(),
        "notes_in": lambda: store.folders.notes_in(ids["folder"]),
        "upcoming": lambda: store.reminders.upcoming(10, since=0),
        "saved_searches": lambda: store.saved_searches.list(),
        "templates": lambda: store.templates.list(),
    }
    lines = plans_of(store, calls[name])
    assert any(index in line for line in lines), lines
    full_scans = [line for line in lines if line.startswith("SCAN") and "INDEX" not in line]
    assert full_scans == [], lines
    if name != "notes_in":  # sorts one folder's notes by date: a subset, not the table
        assert "USE TEMP B-TREE FOR ORDER BY" not in lines, lines


def test_open_moves_merges_and_checkpoints_off_the_write_path(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "d.sqlite") as store:
        config = dict(store.db.conn.execute("SELECT k, v FROM notes_fts_config").fetchall())
        assert config["automerge"] == 0
        assert store.db.scalar("PRAGMA wal_autocheckpoint") > 1000
        assert store.maintainer is None


def test_a_background_maintainer_runs_while_open_and_stops_on_close(tmp_path: Path) -> None:
    store = DeviceStore.open(tmp_path / "d.sqlite", background=True)
    try:
        assert store.maintainer is not None and store.maintainer.running
        for i in range(300):
            store.notes.create(f"note {i}", f"body marker{i}")
        assert store.maintainer.wait_settled(30)
        assert store.maintainer.error is None
        assert [h.title for h in store.search.query("marker299")] == ["note 299"]
    finally:
        store.close()
    assert store.maintainer is not None and not store.maintainer.running
