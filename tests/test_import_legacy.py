"""Importing a version 11 file with every trap: exact accounting, nothing lost, source untouched."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from legacy_factory import (
    IMPORTED,
    QUARANTINED,
    TABLES,
    V11,
    LegacyFixture,
    make_legacy_db,
)

from duru.errors import LegacyImportError
from duru.local import Database
from duru.local.legacy import QUARANTINE_SOURCE, ImportReport, TableReport, import_legacy
from duru.local.legacy.spec import BY_LEGACY_NAME


@dataclass
class Imported:
    fixture: LegacyFixture
    report: ImportReport
    target: Path
    source_hash_before: str


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    folder = tmp_path_factory.mktemp("legacy")
    fixture = make_legacy_db(folder / "app.sqlite", seed=20240923, notes=60)
    before = file_hash(fixture.path)
    report = import_legacy(fixture.path, folder / "duru.sqlite")
    return Imported(fixture, report, folder / "duru.sqlite", before)


@pytest.fixture
def db(imported: Imported) -> Any:
    with Database.open(imported.target, create=False) as opened:
        yield opened


def source_rows(path: Path, table: str) -> dict[int, dict[str, object]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = conn.execute(f'SELECT rowid AS "__rowid", * FROM "{table}"')
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in cur.fetchall()}
    finally:
        conn.close()


def test_every_table_is_accounted_for_exactly_as_the_factory_predicts(imported: Imported) -> None:
    got = imported.report.to_dict()["tables"]
    for table, want in imported.fixture.expected.items():
        counts = {k: got[table][k] for k in ("read", "imported", "merged", "quarantined")}
        assert counts == want.__dict__, table
    imported.report.check()


def test_the_source_file_is_unchanged(imported: Imported) -> None:
    assert file_hash(imported.fixture.path) == imported.source_hash_before


def test_every_quarantined_row_is_kept_whole_with_its_reason(imported: Imported, db: Any) -> None:
    kept = defaultdict(list)
    for q in db.rows("SELECT * FROM quarantine WHERE source = ?", [QUARANTINE_SOURCE]):
        kept[(q["source_table"], q["source_key"])].append(q)
    for table in TABLES:
        original = source_rows(imported.fixture.path, table)
        for planned in imported.fixture.planned(table, QUARANTINED):
            entries = kept.pop((table, planned.label))
            assert len(entries) == 1, (table, planned.label)
            entry = entries[0]
            assert entry["reason"].startswith(planned.code + ": "), (table, entry["reason"])
            assert json.loads(entry["row_json"]) == original[planned.rowid]
    assert not kept, f"quarantined rows the factory did not predict: {list(kept)}"


def test_imported_rows_hold_the_values_read_by_column_name(imported: Imported, db: Any) -> None:
    checked = 0
    for table, rows in imported.fixture.rows.items():
        spec = BY_LEGACY_NAME[table]
        for planned in rows:
            if planned.outcome != IMPORTED or spec.entity is None:
                continue
            assert planned.key is not None, (table, planned.values)
            stored = db.get(spec.entity, planned.key)
            for name, value in planned.expect.items():
                assert stored[name] == value, (table, planned.label, name)
            checked += 1
    assert checked == sum(c.imported for c in imported.fixture.expected.values())


def test_the_file_really_has_columns_out_of_declared_order(imported: Imported) -> None:
    conn = sqlite3.connect(imported.fixture.path)
    try:
        differ = [
            t
            for t, cols in V11.items()
            if [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')][: len(cols)]
            != [c for c, _ in cols]
        ]
    finally:
        conn.close()
    assert len(differ) >= len(V11) - 1


def test_deep_folder_paths_come_through_intact(imported: Imported, db: Any) -> None:
    assert len(imported.fixture.deep_paths) == 12
    for key, path in imported.fixture.deep_paths.items():
        names = []
        current = db.get("folder", key)
        while True:
            names.append(current["name"])
            if current["parent_id"] is None:
                break
            current = db.get("folder", current["parent_id"])
        assert "/".join(reversed(names)) == path


def test_moved_and_cleared_rows_are_reported(imported: Imported) -> None:
    for table in TABLES:
        notices = imported.report.tables[table].notices
        moved = sum(n for what, n in notices.items() if "moved to the top level" in what)
        cleared = sum(n for what, n in notices.items() if what.endswith("cleared"))
        assert moved == imported.fixture.moved_to_top[table], table
        assert cleared == imported.fixture.cleared_refs[table], table


def test_a_folder_cycle_is_broken_at_exactly_one_folder(db: Any) -> None:
    from legacy_factory import legacy_uuid

    loop = [db.get("folder", legacy_uuid("local_folders", f"loop-{i}")) for i in range(3)]
    assert sum(f["parent_id"] is None for f in loop) == 1
    assert db.get("folder", legacy_uuid("local_folders", "inside-itself"))["parent_id"] is None


def test_unknown_columns_are_named_in_warnings(imported: Imported) -> None:
    for table, columns in imported.fixture.unknown_columns.items():
        warnings = " ".join(imported.report.tables[table].warnings)
        for column in columns:
            assert repr(column) in warnings


def test_every_imported_row_has_one_outbox_op(imported: Imported, db: Any) -> None:
    ops = db.rows("SELECT entity, row_id, kind, base_version FROM outbox")
    assert len(ops) == imported.report.totals["imported"]
    assert {(o["kind"], o["base_version"]) for o in ops} == {("upsert", 0)}
    for op in ops[:: max(1, len(ops) // 50)]:
        assert db.find(op["entity"], op["row_id"]) is not None


def test_search_index_equals_the_one_the_triggers_build(
    imported: Imported, db: Any, tmp_path: Path
) -> None:
    with Database.open(tmp_path / "reference.sqlite") as ref:
        fields = ", ".join(f'"{n}"' for n in BY_LEGACY_NAME["local_notes"].entity.field_names)  # type: ignore[union-attr]
        with ref.transaction():
            for row in db.rows(f"SELECT {fields} FROM notes ORDER BY doc_id"):
                ref.insert("note", row, outbox=False)
        assert _vocabulary(ref) == _vocabulary(db)
        assert _triggers(ref) == _triggers(db)
    assert db.scalar("SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'çalışma'") > 0


def _vocabulary(db: Any) -> set[tuple[object, ...]]:
    db.conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, notes_fts, instance)"
    )
    found = db.conn.execute("SELECT term, doc, col, offset FROM temp.vocab").fetchall()
    return set(found)


def _triggers(db: Any) -> list[tuple[object, ...]]:
    sql = "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name"
    return list(db.conn.execute(sql).fetchall())


def test_the_report_is_json_and_records_where_it_came_from(imported: Imported, db: Any) -> None:
    data = json.loads(imported.report.to_json())
    assert set(data["tables"]) == set(TABLES)
    assert data["tables"]["note_tags"]["merges"] == {"exact duplicate": 2}
    provenance = json.loads(db.meta("legacy_import"))
    assert provenance["version"] == 11
    assert provenance["totals"] == imported.report.totals
    assert any("quarantined" in line for line in imported.report.lines())


def test_check_refuses_an_unbalanced_report(tmp_path: Path) -> None:
    report = ImportReport(tmp_path / "a", tmp_path / "b")
    report.tables["note_tags"] = TableReport("note_tags", read=3, imported=1, merged=1)
    with pytest.raises(LegacyImportError, match="note_tags: read 3"):
        report.check()


def test_a_clean_file_imports_every_row(tmp_path: Path) -> None:
    fixture = make_legacy_db(tmp_path / "clean.sqlite", seed=7, notes=30, traps=False)
    report = import_legacy(fixture.path, tmp_path / "duru.sqlite")
    for table, want in fixture.expected.items():
        got = report.tables[table]
        assert (got.read, got.imported, got.quarantined) == (want.read, want.imported, 0), table
    assert not any(t.warnings for t in report.tables.values())


def test_the_package_exports_what_callers_use() -> None:
    import duru.local.legacy as legacy

    assert legacy.__all__ == sorted(legacy.__all__)
    assert set(legacy.__all__) == {
        "LEGACY_NAMESPACE",
        "LEGACY_TABLES",
        "LEGACY_VERSION",
        "QUARANTINE_SOURCE",
        "ImportReport",
        "LegacyTable",
        "Progress",
        "Reason",
        "TableReport",
        "composite_id",
        "import_legacy",
        "map_id",
    }
    for name in legacy.__all__:
        assert getattr(legacy, name) is not None


def test_every_v11_column_of_an_entity_table_has_a_place(imported: Imported) -> None:
    for table, columns in V11.items():
        spec = BY_LEGACY_NAME[table]
        for column, _ in columns:
            assert spec.knows(column), (table, column)
            if spec.entity is not None:
                placed = (
                    spec.field_for(column) is not None
                    or column in spec.derived
                    or spec.ref(column) is not None
                )
                assert placed, (table, column)
