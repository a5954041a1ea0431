"""What the import refuses, and what it leaves behind when it stops."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from legacy_factory import legacy_uuid, make_legacy_db

from duru.errors import CorruptDatabase, NotFound, SchemaMismatch, StoreError, UsageError
from duru.local import Database
from duru.local.legacy import import_legacy


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_legacy_db(tmp_path / "app.sqlite", seed=3, notes=12).path


def test_a_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no legacy database"):
        import_legacy(tmp_path / "nope.sqlite", tmp_path / "duru.sqlite")
    assert not (tmp_path / "duru.sqlite").exists()


def test_a_file_that_is_not_sqlite_is_corrupt(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("just some notes\n" * 100)
    with pytest.raises(CorruptDatabase, match="bad header"):
        import_legacy(bogus, tmp_path / "duru.sqlite")
    assert not (tmp_path / "duru.sqlite").exists()


def test_a_truncated_database_is_corrupt(source: Path, tmp_path: Path) -> None:
    data = source.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDatabase):
        import_legacy(cut, tmp_path / "duru.sqlite")
    assert not (tmp_path / "duru.sqlite").exists()


def test_a_file_without_the_v11_tables_names_what_is_missing(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE local_notes (title TEXT, body TEXT)")
    conn.execute("CREATE TABLE note_tags (note_id TEXT, tag TEXT)")
    conn.close()
    with pytest.raises(SchemaMismatch) as caught:
        import_legacy(other, tmp_path / "duru.sqlite")
    message = caught.value.message
    assert "local_notes lacks column(s) id" in message
    assert "missing table note_tasks" in message
    assert "note_tags" not in message


def test_a_later_schema_version_is_refused(source: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA user_version = 12")
    conn.close()
    with pytest.raises(SchemaMismatch, match="version 12"):
        import_legacy(source, tmp_path / "duru.sqlite")


def test_the_target_must_be_new_or_empty(source: Path, tmp_path: Path) -> None:
    used = tmp_path / "used.sqlite"
    used.write_bytes(b"x")
    with pytest.raises(UsageError, match="not empty"):
        import_legacy(source, used)
    assert used.read_bytes() == b"x"
    with pytest.raises(UsageError):
        import_legacy(source, source)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    report = import_legacy(source, empty)
    assert report.totals["imported"] > 0
    with pytest.raises(NotFound, match="no folder"):
        import_legacy(source, tmp_path / "absent" / "duru.sqlite")


class Stop(Exception):
    pass


def test_an_import_stopped_midway_leaves_no_target(source: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []

    def progress(table: str, done: int, total: int) -> None:
        seen.append((table, done, total))
        if table == "note_tasks":
            raise Stop

    target = tmp_path / "duru.sqlite"
    with pytest.raises(Stop):
        import_legacy(source, target, progress=progress)
    assert [p for p in tmp_path.iterdir() if p.name.startswith("duru.sqlite")] == []
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(Stop):
        import_legacy(source, empty, progress=progress)
    assert empty.read_bytes() == b""
    assert seen[0] == ("local_notes", 0, seen[0][2])


def test_progress_reports_every_table_to_its_end(source: Path, tmp_path: Path) -> None:
    last: dict[str, tuple[int, int]] = {}
    report = import_legacy(
        source, tmp_path / "duru.sqlite", progress=lambda t, d, n: last.__setitem__(t, (d, n))
    )
    for table, (done, total) in last.items():
        assert done == total == report.tables[table].read


def test_rows_still_in_the_write_ahead_log_are_imported_and_nothing_changes(
    tmp_path: Path,
) -> None:
    fixture = make_legacy_db(tmp_path / "app.sqlite", seed=5, notes=8, wal=True)
    writer = sqlite3.connect(fixture.path, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO local_notes (id, title) VALUES ('only-in-wal', 'fresh')")
        wal = Path(f"{fixture.path}-wal")
        before = (digest(fixture.path), digest(wal))
        report = import_legacy(fixture.path, tmp_path / "duru.sqlite")
        assert (digest(fixture.path), digest(wal)) == before
    finally:
        writer.close()
    assert report.tables["local_notes"].read == fixture.expected["local_notes"].read + 1
    with Database.open(tmp_path / "duru.sqlite", create=False) as db:
        assert db.get("note", legacy_uuid("local_notes", "only-in-wal"))["title"] == "fresh"


def test_text_that_is_not_utf8_quarantines_its_row_and_reading_goes_on(tmp_path: Path) -> None:
    fixture = make_legacy_db(tmp_path / "app.sqlite", seed=9, notes=6)
    conn = sqlite3.connect(fixture.path)
    conn.execute(
        "INSERT INTO local_notes (id, title) VALUES ('bad-utf8', CAST(x'c328' AS TEXT)),"
        " ('after-bad', 'fine')"
    )
    conn.commit()
    conn.close()
    report = import_legacy(fixture.path, tmp_path / "duru.sqlite")
    notes, want = report.tables["local_notes"], fixture.expected["local_notes"]
    assert (notes.imported, notes.quarantined) == (want.imported + 1, want.quarantined + 1)
    with Database.open(tmp_path / "duru.sqlite", create=False) as db:
        assert db.get("note", legacy_uuid("local_notes", "after-bad"))["title"] == "fine"
        kept = db.rows("SELECT reason, row_json FROM quarantine WHERE source_key = 'bad-utf8'")
    assert kept[0]["reason"].startswith("unparseable: title")
    assert '"title": {"$bytes_hex": "c328"}' in kept[0]["row_json"]


def test_a_source_locked_by_its_app_is_a_retryable_error(source: Path, tmp_path: Path) -> None:
    app = sqlite3.connect(source, isolation_level=None)
    try:
        app.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="locked") as caught:
            import_legacy(source, tmp_path / "duru.sqlite")
        assert caught.value.retryable
        assert not isinstance(caught.value, CorruptDatabase)
    finally:
        app.execute("ROLLBACK")
        app.close()
    assert not (tmp_path / "duru.sqlite").exists()
    import_legacy(source, tmp_path / "duru.sqlite").check()
