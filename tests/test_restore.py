"""`duru restore`: an export back into a new device database (issue 11, item 9).

Round trip: export -> restore -> export gives the byte-identical document (no field
differs: the export leaves out what must, the outbox, the device id and the
full-text index's doc ids). An export of another model, a database that is not
empty and a broken export are refused, and leave no database behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from legacy_factory import make_legacy_db

from duru.errors import ConstraintViolation, SchemaMismatch, UsageError
from duru.local import DeviceStore, export_json, write_export
from duru.local.export import EXPORT_KEY
from duru.local.legacy import import_legacy
from duru.local.maintenance import verify_index
from duru.local.restore import restore_export
from duru.model import ENTITIES

DURU = Path(sys.executable).with_name("duru")
WHEN = 1_767_225_600_000  # 2026-01-01 in epoch ms


def populate(store: DeviceStore) -> None:
    """Every entity, CJK and emoji, a deep folder chain and subtasks (parents after children)."""
    s = store
    parent = None
    for depth in range(12):  # random ids: some children sort before their parents
        parent = s.folders.create(f"フォルダ {depth} 📁", None if parent is None else parent["id"])
    assert parent is not None
    a = s.notes.create("東京 会議", "中文 한국어 🎉", folder_id=parent["id"], tags=["旅行", "x"])
    b = s.notes.create("B", "beta", tags=["x"], pinned=True)
    s.links.add(a["id"], "B")
    s.links.add(b["id"], "Nobody")
    task = s.tasks.create(a["id"], "parent", due_date=WHEN)
    for i in range(8):
        task = s.tasks.create(a["id"], f"sub {i}", parent_task_id=task["id"], labels=["l1"])
    rem = s.reminders.create(a["id"], remind_at=WHEN, title="r ⏰")
    s.tasks.create(b["id"], "linked", reminder_id=rem["id"])
    s.templates.create("T", "tb", tags=["t"], metadata={"k": [1, 2.5, "ü"]})
    s.saved_searches.create("S", "q", parameters={"in": "title"})
    s.attachments.add(b["id"], "f.txt", size_bytes=1)
    s.notes.trash(b["id"])
    s.db.quarantine("import", "local_notes", "k1", "orphan tag", {"tag": "ü", "n": 1.5})


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    with DeviceStore.open(tmp_path / "source.sqlite") as store:
        populate(store)
        write_export(store.db, tmp_path / "backup.json")
    return tmp_path / "backup.json"


def test_export_restore_export_is_the_identical_document(backup: Path, tmp_path: Path) -> None:
    report = restore_export(backup, tmp_path / "restored.sqlite")
    exported = json.loads(backup.read_text(encoding="utf-8"))
    assert report.rows == {t: len(rows) for t, rows in exported.items() if t != EXPORT_KEY}
    assert report.rows["folders"] == 12 and report.rows["tasks"] == 10
    assert report.outbox == sum(len(exported[e.table]) for e in ENTITIES)
    with DeviceStore.open(tmp_path / "restored.sqlite", create=False) as store:
        assert export_json(store.db, indent=2) + "\n" == backup.read_text(encoding="utf-8")
        # The restored store works: the deep folder path, the index over the notes.
        (note,) = store.notes.list_recent()
        folder = store.folders.folder_of(note["id"])
        assert folder is not None and len(store.folders.path(folder["id"])) == 12
        assert verify_index(store.db) == 0


def test_an_imported_legacy_file_round_trips(tmp_path: Path) -> None:
    """The odd rows a legacy import makes (quarantine, cleared references) come back too."""
    make_legacy_db(tmp_path / "legacy.sqlite", seed=7, notes=60)
    import_legacy(tmp_path / "legacy.sqlite", tmp_path / "imported.sqlite")
    with DeviceStore.open(tmp_path / "imported.sqlite", create=False) as store:
        text = export_json(store.db)
        write_export(store.db, tmp_path / "backup.json")
    restore_export(tmp_path / "backup.json", tmp_path / "restored.sqlite")
    with DeviceStore.open(tmp_path / "restored.sqlite", create=False) as store:
        assert export_json(store.db) == text


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DURU), *args], capture_output=True, text=True, timeout=60)


def test_the_cli_reports_every_table(backup: Path, tmp_path: Path) -> None:
    done = run("restore", str(backup), "--db", str(tmp_path / "new.sqlite"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    exported = json.loads(backup.read_text(encoding="utf-8"))
    assert report["rows"] == {t: len(r) for t, r in exported.items() if t != EXPORT_KEY}
    again = run("export", "--db", str(tmp_path / "new.sqlite"))
    assert again.stdout == backup.read_text(encoding="utf-8")


def test_an_export_of_another_model_is_refused(backup: Path, tmp_path: Path) -> None:
    doc = json.loads(backup.read_text(encoding="utf-8"))
    doc[EXPORT_KEY]["model_fingerprint"] = "feedfacefeedface"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc), encoding="utf-8")
    target = tmp_path / "new.sqlite"
    with pytest.raises(SchemaMismatch, match="exported by model feedfacefeedface"):
        restore_export(other, target)
    del doc[EXPORT_KEY]
    other.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(SchemaMismatch, match="records no model fingerprint"):
        restore_export(other, target)
    done = run("restore", str(other), "--db", str(target))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "backup.json",
        "other.json",
        "source.sqlite",
    ]


def test_a_database_that_is_not_empty_is_refused(backup: Path, tmp_path: Path) -> None:
    target = tmp_path / "source.sqlite"
    before = target.read_bytes()
    with pytest.raises(UsageError, match="already exists and is not empty"):
        restore_export(backup, target)
    done = run("restore", str(backup), "--db", str(target))
    assert done.returncode == 2 and "already exists" in done.stderr
    assert target.read_bytes() == before


def test_a_broken_export_restores_nothing(backup: Path, tmp_path: Path) -> None:
    doc = json.loads(backup.read_text(encoding="utf-8"))
    doc["notes"].append(dict(doc["notes"][0]))  # the same key twice
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConstraintViolation):
        restore_export(broken, tmp_path / "new.sqlite")
    broken.write_bytes(b"\xff\xfe not json")
    done = run("restore", str(broken), "--db", str(tmp_path / "new.sqlite"))
    assert (
        done.returncode == 1 and done.stderr.startswith("duru: ") and "Traceback" not in done.stderr
    )
    assert not list(tmp_path.glob("new.sqlite*")) and not list(tmp_path.glob(".new*"))
