"""Rollback: to the start of a run, or to any rollback point, in one call."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from migrate_support import TAG_LIMIT, TEST_MIGRATIONS, dump, fast_config, make_device_file, schema

from duru.errors import NotFound, RollbackFailed
from duru.migrate.sqlite.engine import history, resume, rollback, run, status
from duru.migrate.sqlite.rollback import RollbackPoint, points


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def all_points(path: Path) -> list[RollbackPoint]:
    conn = sqlite3.connect(path)
    try:
        return points(conn)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], object]:
    """A generated file, and what an uninterrupted run makes of it."""
    folder = tmp_path_factory.mktemp("reference")
    base = make_device_file(folder / "base.db")
    done = folder / "done.db"
    shutil.copyfile(base, done)
    run(done, migrations=TEST_MIGRATIONS, config=fast_config())
    return base, dump(done), schema(done)


@pytest.fixture
def migrated(tmp_path: Path, reference: tuple[Path, dict[str, object], object]) -> Path:
    path = tmp_path / "device.db"
    shutil.copyfile(reference[0], path)
    run(path, migrations=TEST_MIGRATIONS, config=fast_config())
    return path


def test_rollback_to_the_start_restores_the_file(
    migrated: Path, reference: tuple[Path, dict[str, object], object]
) -> None:
    trail_before = [r.id for r in history(migrated)[-1].rows]
    report = rollback(migrated, migrations=TEST_MIGRATIONS)
    assert report.status == "rolled_back" and report.point is None
    assert dump(migrated) == dump(reference[0])
    assert schema(migrated) == schema(reference[0])
    last = history(migrated)[-1]
    assert last.run.status == "rolled_back"
    # The trail survives the restore, followed by the rollback itself.
    assert [r.id for r in last.rows][: len(trail_before)] == trail_before
    assert last.rows[-1].step == "run/rollback"
    # And the file migrates again, to the same result.
    run(migrated, migrations=TEST_MIGRATIONS, config=fast_config())
    assert dump(migrated) == reference[1]


def test_rollback_to_a_chunk_point_rebuilds_that_state_then_resume_finishes(
    migrated: Path, reference: tuple[Path, dict[str, object], object]
) -> None:
    chunk = [p for p in all_points(migrated) if p.step == "0002_test/00.copy"][2]
    assert chunk.hwm is not None
    report = rollback(migrated, to=chunk.id, migrations=TEST_MIGRATIONS)
    assert report.status == "paused" and report.replayed
    found = status(migrated, migrations=TEST_MIGRATIONS)
    assert found.version == "1" and found.active is not None
    assert found.active.status == "paused"
    # Exactly the rows up to the high-water mark (note_tags go in key order) are in the
    # shadow or in quarantine.
    source = query(migrated, f"SELECT id, tag FROM note_tags WHERE id <= '{chunk.hwm}'")
    copied = {r[0] for r in query(migrated, "SELECT id FROM _duru_new_note_tags")}
    kept = query(migrated, "SELECT row_json FROM quarantine WHERE source_table = 'note_tags'")
    bad = {r[0] for r in source if len(str(r[1])) > TAG_LIMIT}
    assert copied == {r[0] for r in source} - bad
    assert sorted(json.loads(str(k[0]))["tag"] for k in kept) == sorted(
        str(r[1]) for r in source if r[0] in bad
    )
    resume(migrated, migrations=TEST_MIGRATIONS)
    assert dump(migrated) == reference[1]
    assert schema(migrated) == reference[2]


def test_rollback_to_a_point_after_a_swap(
    migrated: Path, reference: tuple[Path, dict[str, object], object]
) -> None:
    swap = next(p for p in all_points(migrated) if p.step == "0002_test/01.swap")
    rollback(migrated, to=swap.id, migrations=TEST_MIGRATIONS)
    types = dict(query(migrated, "SELECT name, type FROM pragma_table_info('tasks')"))
    assert types["estimated_minutes"] == "REAL"  # swapped already
    assert "word_count" not in dict(
        query(migrated, "SELECT name, 1 FROM pragma_table_info('notes')")
    )
    run(migrated, migrations=TEST_MIGRATIONS)  # the next run resumes the paused one
    assert dump(migrated) == reference[1]


def test_points_can_be_revisited_in_any_order(
    migrated: Path, reference: tuple[Path, dict[str, object], object]
) -> None:
    found = all_points(migrated)
    late = next(p for p in found if p.step == "0002_test/04.copy")
    early = next(p for p in found if p.step == "0002_test/00.bridge")
    rollback(migrated, to=late.id, migrations=TEST_MIGRATIONS)
    rollback(migrated, to=early.id, migrations=TEST_MIGRATIONS)
    assert query(migrated, "SELECT count(*) FROM _duru_new_note_tags") == [(0,)]
    resume(migrated, migrations=TEST_MIGRATIONS)
    assert dump(migrated) == reference[1]
    assert not [r for r in history(migrated)[-1].rows if r.status == "running"]


def test_rollback_needs_the_backup(migrated: Path) -> None:
    backup = history(migrated)[-1].run.backup_path
    assert backup is not None
    Path(backup).unlink()
    with pytest.raises(RollbackFailed, match="missing"):
        rollback(migrated, migrations=TEST_MIGRATIONS)
    assert status(migrated, migrations=TEST_MIGRATIONS).version == "2"


def test_unknown_point_and_no_run(tmp_path: Path, migrated: Path) -> None:
    with pytest.raises(NotFound):
        rollback(migrated, to=10**6, migrations=TEST_MIGRATIONS)
    fresh = make_device_file(tmp_path / "fresh.db", notes=2)
    with pytest.raises(NotFound):
        rollback(fresh)
