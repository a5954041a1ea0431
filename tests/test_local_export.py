"""Export: one JSON-able object per database, byte-identical for equal databases."""

from __future__ import annotations

import json
from pathlib import Path

from duru.local import Database, DeviceStore, export_all, export_json
from duru.local.export import EXPORT_KEY, export_header
from duru.model import ENTITIES, from_local

TABLES = {e.table for e in ENTITIES} | {"quarantine"}


def populate(store: DeviceStore) -> None:
    s = store
    top = s.folders.create("top")
    sub = s.folders.create("sub", top["id"])
    a = s.notes.create("A", "alpha", folder_id=sub["id"], tags=["x", "y"], pinned=True)
    b = s.notes.create("B", "beta", tags=["x"])
    s.links.add(a["id"], "B")
    s.links.add(b["id"], "Nobody")
    parent = s.tasks.create(a["id"], "parent", due_date=10)
    s.tasks.create(a["id"], "child", parent_task_id=parent["id"], labels=["l1"])
    rem = s.reminders.create(a["id"], remind_at=1_767_225_600_000, title="r")
    s.tasks.create(b["id"], "linked", reminder_id=rem["id"])
    s.templates.create("T", "tb", tags=["t"], metadata={"k": [1, 2]})
    s.saved_searches.create("S", "q", parameters={"in": "title"})
    s.attachments.add(b["id"], "f.txt", size_bytes=1)
    s.notes.trash(b["id"])
    s.db.quarantine("import", "local_notes", "k1", "orphan tag", {"tag": "ü", "n": 1})


def test_export_shape(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "a.db") as store:
        populate(store)
        data = export_all(store.db)
        text = export_json(store.db)
    assert json.loads(text) == {EXPORT_KEY: export_header(), **data}
    assert set(data) == TABLES
    for e in ENTITIES:
        rows = data[e.table]
        assert all(list(r) == list(e.field_names) for r in rows), e.table
        assert [r[e.key] for r in rows] == sorted(r[e.key] for r in rows), e.table
    counts = {t: len(rows) for t, rows in data.items()}
    assert counts == {
        "notes": 2,
        "folders": 2,
        "note_folders": 1,
        "note_tags": 3,
        "note_links": 2,
        "tasks": 3,
        "reminders": 1,
        "templates": 1,
        "saved_searches": 1,
        "attachments": 1,
        "quarantine": 1,
    }
    (q,) = data["quarantine"]
    assert q["row_json"] == {"tag": "ü", "n": 1} and q["reason"] == "orphan tag"
    note = next(n for n in data["notes"] if n["title"] == "B")
    assert note["deleted"] == 1 and "doc_id" not in note


def copy_reversed(src: Database, dst: Database) -> None:
    """Load ``src``'s rows into ``dst`` in reverse key order (other rowids, other doc_ids)."""
    data = export_all(src)
    with dst.transaction():
        dst.conn.execute("PRAGMA defer_foreign_keys = ON")
        for e in ENTITIES:
            for row in reversed(data[e.table]):
                friendly = {f.name: from_local(f, row[f.name]) for f in e.fields}
                dst.insert(e, friendly, outbox=False)
        for q in data["quarantine"]:
            dst.conn.execute(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    q["id"],
                    q["source"],
                    q["source_table"],
                    q["source_key"],
                    q["reason"],
                    json.dumps(q["row_json"]),
                    q["created_at"],
                ),
            )


def test_equal_databases_export_byte_identical_json(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "a.db") as a, Database.open(tmp_path / "b.db") as b:
        populate(a)
        copy_reversed(a.db, b)
        first = export_json(a.db)
        assert export_json(b) == first
        assert export_json(a.db) == first  # and stable across calls
        assert b.scalar("SELECT count(*) FROM outbox") == 0
        a.notes.edit(a.notes.list_recent()[0]["id"], body="changed")
        assert export_json(a.db) != first


def test_export_inside_a_transaction_sees_its_writes(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "a.db") as store:
        with store.db.transaction():
            store.notes.create("uncommitted")
            assert len(export_all(store.db)["notes"]) == 1
        assert not store.db.in_transaction
        assert not store.db.conn.in_transaction
