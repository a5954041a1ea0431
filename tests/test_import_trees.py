"""The tree loader's rare paths: a parent the model refuses, copies of a waiting row."""

from __future__ import annotations

from pathlib import Path

from legacy_factory import make_legacy_db

from duru.local import Database
from duru.local.legacy import ImportReport, map_id
from duru.local.legacy.reader import LegacyReader, SourceRow
from duru.local.legacy.rows import Prepared
from duru.local.legacy.run import ImportRun
from duru.local.legacy.spec import BY_LEGACY_NAME
from duru.local.legacy.trees import TreeLoader
from duru.model import new_id

TASKS = BY_LEGACY_NAME["note_tasks"]


def task(rowid: int, legacy_id: str, parent: str | None, note: str, **values: object) -> Prepared:
    key = map_id("note_tasks", legacy_id)
    parent_key = None if parent is None else map_id("note_tasks", parent)
    source = SourceRow(rowid, {"id": legacy_id, "parent_task_id": parent, **values})
    normal = {"id": key, "parent_task_id": parent_key, **values}
    model = {"id": key, "note_id": note, "parent_task_id": parent_key, "content": legacy_id}
    return Prepared(source, key, normal, {**model, **values}, {"parent_task_id": parent_key}, [])


def test_children_of_a_refused_parent_come_through_at_the_top(tmp_path: Path) -> None:
    source = make_legacy_db(tmp_path / "app.sqlite", seed=1, notes=2, traps=False).path
    with LegacyReader.open(source) as reader, Database.open(tmp_path / "duru.sqlite") as db:
        note = new_id()
        db.insert("note", {"id": note})
        report = ImportReport(source, db.path)
        run = ImportRun(reader, db, report, now=1_700_000_000_000)
        run.start(TASKS)
        loader = TreeLoader(run, TASKS)
        loader.add(task(1, "c", "b", note))
        loader.add(task(2, "b", "a", note, status=99))  # the model refuses it when written
        loader.add(task(3, "b", "a", note, status=99))  # an exact copy, waiting with it
        loader.add(task(4, "a", None, note))
        loader.finish()
        run.finish(TASKS)

        counted = report.tables["note_tasks"]
        assert (counted.imported, counted.merged, counted.quarantined) == (2, 0, 2)
        assert counted.quarantines == {"refused": 2}
        assert counted.notices == {"parent not imported: moved to the top level": 1}
        assert db.get("task", map_id("note_tasks", "c"))["parent_task_id"] is None
        reasons = [r["reason"] for r in db.rows("SELECT reason FROM quarantine ORDER BY id")]
        assert reasons[0].startswith("refused: status") and "copy" in reasons[1]


def test_copies_of_a_waiting_row_merge_once_it_is_written(tmp_path: Path) -> None:
    source = make_legacy_db(tmp_path / "app.sqlite", seed=2, notes=2, traps=False).path
    with LegacyReader.open(source) as reader, Database.open(tmp_path / "duru.sqlite") as db:
        note = new_id()
        db.insert("note", {"id": note})
        report = ImportReport(source, db.path)
        run = ImportRun(reader, db, report, now=1_700_000_000_000)
        run.start(TASKS)
        loader = TreeLoader(run, TASKS)
        loader.add(task(1, "b", "a", note))
        loader.add(task(2, "b", "a", note))
        loader.add(task(3, "b", "a", note, notes="other"))  # same key, other values
        loader.add(task(4, "a", None, note))
        loader.finish()
        run.finish(TASKS)

        counted = report.tables["note_tasks"]
        assert (counted.imported, counted.merged, counted.quarantined) == (2, 1, 1)
        assert counted.quarantines == {"duplicate": 1}
        assert db.get("task", map_id("note_tasks", "b"))["parent_task_id"] == map_id(
            "note_tasks", "a"
        )
