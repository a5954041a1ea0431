"""The phased runner: plan, dry run, preflight, backup, audit, automatic stops, progress."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from migrate_support import (
    LINK_TITLES,
    TAGS_V2,
    TEST_MIGRATIONS,
    dump,
    fast_config,
    make_device_file,
    schema,
    set_of,
)

from duru.errors import MigrationError, NotFound, PreflightFailed
from duru.migrate.migration import MigrationSet
from duru.migrate.ops import AddIndex, CreateTable, IndexSpec, RebuildTable, Rejected, TransformData
from duru.migrate.progress import ProgressEvent
from duru.migrate.sqlite.engine import history, plan, resume, run, status
from duru.model import Row


@pytest.fixture
def device(tmp_path: Path) -> Path:
    return make_device_file(tmp_path / "device.db")


def query(path: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_plan_lists_every_step_by_phase_with_row_estimates(device: Path) -> None:
    p = plan(device, migrations=TEST_MIGRATIONS)
    phases = [s.phase for s in p.steps]
    assert phases == sorted(phases)
    keys = [s.key for s in p.steps]
    assert keys[:2] == ["run/preflight", "run/backup"]
    assert keys[-3:] == ["run/drop-bridges", "run/analyze", "run/report"]
    # A rebuild is a bridge, then a chunked copy, then a swap, in that order.
    assert keys.index("0002_test/00.bridge") < keys.index("0002_test/00.copy")
    assert keys.index("0002_test/00.copy") < keys.index("0002_test/00.swap")
    copy = next(s for s in p.steps if s.key == "0002_test/00.copy")
    assert copy.estimate == query(device, "SELECT count(*) FROM note_tags")[0][0]
    text = p.render()
    for phase in ("phase 1 prepare", "phase 2 bridge", "phase 3 migrate", "phase 4 cleanup"):
        assert phase in text
    assert p.to_json()["target_version"] == "2"
    # One word per step kind on both databases (the server's plan: test_migrate_pg_seal).
    kinds = {s["key"]: s["kind"] for s in p.to_json()["steps"]}
    assert kinds["run/preflight"] == "transaction" and kinds["run/backup"] == "outside"
    assert kinds["0002_test/00.copy"] == "chunked"


def test_emitted_sql_copies_by_name_and_swaps_in_documented_order(device: Path) -> None:
    p = plan(device, migrations=TEST_MIGRATIONS)
    sql = {s.key: s.sql for s in p.steps}
    # note_tags (STRICT, text key) is copied in key order; notes keeps its rowids (FTS).
    assert sql["0002_test/00.copy"][0] == (
        'INSERT INTO "_duru_new_note_tags" ("id", "note_id", "tag", "created_at", "updated_at",'
        ' "version") SELECT "id", "note_id", "tag", "created_at", "updated_at", "version"'
        ' FROM "note_tags" WHERE "id" > ? AND "id" <= ? ORDER BY "id"'
    )
    notes = sql["0002_test/04.copy"][0]
    assert notes.startswith('INSERT INTO "_duru_new_notes" ("doc_id", "id", "title",')
    assert notes.endswith('FROM "notes" WHERE rowid > ? AND rowid <= ? ORDER BY rowid')
    for statement in (sql["0002_test/00.copy"][0], notes):
        assert "*" not in statement and "OR IGNORE" not in statement.upper()
    swap = list(sql["0002_test/00.swap"])
    assert swap[:2] == [
        'DROP TABLE "note_tags"',
        'ALTER TABLE "_duru_new_note_tags" RENAME TO "note_tags"',
    ]
    assert swap[-1] == 'PRAGMA foreign_key_check("note_tags")'
    assert 'CREATE INDEX "ix_note_tags_tag_note_id" ON "note_tags" ("tag", "note_id")' in swap
    bridge = sql["0002_test/00.bridge"]
    assert bridge[1] == TAGS_V2.create_as("_duru_new_note_tags")
    assert any("RAISE(ABORT" in s for s in bridge)
    assert sql["0002_test/03.apply"] == (
        'CREATE INDEX "ix_tasks_deleted_due_date" ON "tasks" ("deleted", "due_date")',
    )


def test_dry_run_changes_nothing(device: Path) -> None:
    before, shape = device.read_bytes(), schema(device)
    report = run(device, dry_run=True, migrations=TEST_MIGRATIONS)
    # The dry run ran every step, on a copy: the report has them, the file has no trace.
    assert report.status == "dry_run" and report.steps and report.backup_path is None
    assert report.plan.target_version != report.plan.source_version
    assert schema(device) == shape
    assert not (device.parent / "device.db.backups").exists()
    assert device.read_bytes() == before


def test_up_to_date_file_has_nothing_to_do(tmp_path: Path) -> None:
    path = make_device_file(tmp_path / "fresh.db", notes=3)
    assert plan(path).up_to_date
    assert run(path).status == "up_to_date"
    assert "duru_migration_runs" not in {
        n for (n,) in query(path, "SELECT name FROM sqlite_schema")
    }


def test_every_step_is_audited_once_and_chunks_are_rollback_points(device: Path) -> None:
    report = run(device, migrations=TEST_MIGRATIONS, config=fast_config())
    trail = history(device)[-1].rows
    steps = [r for r in trail if r.kind == "step"]
    assert sorted(r.step for r in steps) == sorted(s.key for s in report.plan.steps)
    assert {r.status for r in trail} == {"ok"}
    assert all(r.ended_at is not None and r.ended_at >= r.started_at for r in trail)
    chunks = [r for r in trail if r.kind == "chunk" and r.step == "0002_test/00.copy"]
    hwms = [r.details["point"]["hwm"] for r in chunks]
    assert hwms == sorted(hwms) and len(set(hwms)) == len(hwms)
    assert sum(r.rows for r in chunks) == next(
        r.rows for r in steps if r.step == "0002_test/00.copy"
    )
    # Chunks start at 50 rows and grow while they are fast.
    sizes = [r.details["size"] for r in chunks]
    assert sizes[0] == 50 and max(sizes) > 50
    assert [r.phase for r in steps][:2] == ["prepare", "prepare"]
    assert status(device, migrations=TEST_MIGRATIONS).version == "2"


def test_backup_is_a_verified_copy_of_the_file_before_the_run(device: Path) -> None:
    before = dump(device)
    report = run(device, migrations=TEST_MIGRATIONS, config=fast_config())
    assert report.backup_path is not None
    backup = Path(report.backup_path)
    assert backup.exists() and not Path(str(backup) + "-wal").exists()
    assert query(backup, "PRAGMA integrity_check") == [("ok",)]
    assert dump(backup) == before
    audited = next(r for r in history(device)[-1].rows if r.step == "run/backup")
    assert audited.details["integrity"] == "ok"
    assert audited.details["tables"]["note_tags"] == len(before["note_tags"])


def test_preflight_refuses_without_enough_free_disk(device: Path) -> None:
    shape = schema(device)
    with pytest.raises(PreflightFailed, match="not enough free disk"):
        run(device, migrations=TEST_MIGRATIONS, config=fast_config(min_free_factor=1e9))
    assert schema(device) == shape  # nothing of the app's changed
    failed = [r for r in history(device)[-1].rows if r.status == "failed"]
    assert [r.step for r in failed] == ["run/preflight"]
    # The next run resumes the failed run and passes once the check does.
    assert run(device, migrations=TEST_MIGRATIONS, config=fast_config()).status == "done"


def test_preflight_refuses_rows_whose_parent_is_missing(device: Path) -> None:
    conn = sqlite3.connect(device)
    conn.execute(
        "INSERT INTO note_tags (id, note_id, tag) VALUES"
        " ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', 'x')"
    )
    conn.commit()
    conn.close()
    with pytest.raises(PreflightFailed, match="note_tags -> notes"):
        run(device, migrations=TEST_MIGRATIONS, config=fast_config())


def test_preflight_refuses_a_corrupt_file(device: Path) -> None:
    root = query(
        device, "SELECT rootpage FROM sqlite_schema WHERE name = 'ix_tasks_note_id_position'"
    )
    conn = sqlite3.connect(device)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with device.open("r+b") as fh:  # break the index's root page, as a bad disk would
        fh.seek((int(str(root[0][0])) - 1) * page)
        fh.write(b"\xff" * 64)
    with pytest.raises(PreflightFailed, match="integrity_check"):
        run(device, migrations=TEST_MIGRATIONS, config=fast_config())


def test_a_failed_step_commits_nothing_but_its_failure_record(device: Path) -> None:
    dup = AddIndex(IndexSpec("ix_unique_tag", "note_tags", ("tag",), unique=True))
    with pytest.raises(MigrationError, match="UNIQUE constraint failed"):
        run(device, migrations=set_of(dup), config=fast_config())
    trail = history(device)[-1].rows
    rows = [r for r in trail if r.step == "0002_t/00.apply"]
    assert [r.status for r in rows] == ["failed"]
    assert not query(device, "SELECT 1 FROM sqlite_schema WHERE name = 'ix_unique_tag'")
    assert status(device, migrations=set_of(dup)).active is not None


def test_error_budget_stops_the_run_and_rolls_back_to_the_start(device: Path) -> None:
    before, shape = dump(device), schema(device)
    strict = set_of(RebuildTable(TAGS_V2, rejects_are_failures=True))
    with pytest.raises(MigrationError, match="rolled back to its start"):
        run(device, migrations=strict, config=fast_config())
    assert dump(device) == before and schema(device) == shape
    last = history(device)[-1]
    assert last.run.status == "rolled_back" and "failed" in str(last.run.error)
    assert any(r.step == "run/rollback" for r in last.rows)
    assert not any(r.status == "running" for r in last.rows)


class SlowAfter:
    """A mapper that becomes slow for rows past a rowid, as if the device came under load."""

    name = "slow after"

    def __init__(self, after: int, delay: float) -> None:
        self.after, self.delay = after, delay

    def map_rows(self, conn: object, rows: Sequence[Row]) -> list[Row | Rejected]:
        out: list[Row | Rejected] = []
        for r in rows:
            if self._slow(conn, r):
                time.sleep(self.delay)
            out.append({"id": r["id"], "source_id": r["source_id"], "title_key": "k"})
        return out

    def _slow(self, conn: object, r: Row) -> bool:
        assert isinstance(conn, sqlite3.Connection)
        rowid = conn.execute("SELECT rowid FROM note_links WHERE id = ?", (r["id"],)).fetchone()
        return int(rowid[0]) > self.after


def _slow_set(after: int) -> MigrationSet:
    return set_of(
        CreateTable(LINK_TITLES),
        TransformData("note_links", "link_titles", SlowAfter(after, 0.004)),
    )


def test_latency_past_its_factor_pauses_or_rolls_back(tmp_path: Path) -> None:
    cfg = fast_config(
        latency_factor=8.0, baseline_chunks=3, degraded_patience=2, on_degraded="pause"
    )
    path = make_device_file(tmp_path / "slow.db", notes=900)
    with pytest.raises(MigrationError, match="latency") as caught:
        run(path, migrations=_slow_set(600), config=cfg)
    assert caught.value.retryable
    found = status(path, migrations=_slow_set(600))
    assert found.active is not None and found.active.status == "paused"
    done = resume(path, migrations=_slow_set(10**9), config=fast_config())
    assert done.status == "done"
    assert query(path, "SELECT count(*) FROM link_titles") == [(900,)]

    other = make_device_file(tmp_path / "slow2.db", notes=900)
    before = dump(other)
    with pytest.raises(MigrationError, match="rolled back to its start"):
        run(other, migrations=_slow_set(600), config=replace(cfg, on_degraded="rollback"))
    assert dump(other) == before


def test_progress_reports_rows_rate_and_eta(device: Path) -> None:
    events: list[ProgressEvent] = []
    run(device, migrations=TEST_MIGRATIONS, config=fast_config(), progress=events.append)
    copy = [e for e in events if e.step == "0002_test/00.copy"]
    assert copy[0].kind == "start" and copy[-1].kind == "end"
    advances = [e for e in copy if e.kind == "advance"]
    assert [e.done for e in advances] == sorted(e.done for e in advances)
    assert advances[-1].done == advances[-1].total
    assert all(e.rows_per_second and e.rows_per_second > 0 for e in advances)
    assert advances[-1].eta_seconds == 0


def test_resume_without_an_unfinished_run_is_not_found(device: Path) -> None:
    with pytest.raises(NotFound):
        resume(device, migrations=TEST_MIGRATIONS)


def test_only_one_process_migrates_a_file(device: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from duru.migrate.sqlite.lock import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(30)",
            str(device),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(MigrationError, match="another process") as caught:
            run(device, migrations=TEST_MIGRATIONS)
        assert caught.value.retryable
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert run(device, migrations=TEST_MIGRATIONS, config=fast_config()).status == "done"


def test_a_run_leaves_no_statistics_of_small_tables(device: Path) -> None:
    """The run ends with ANALYZE; statistics of a table of a few rows outlived it (a
    device that then grew scanned whole tables, see duru.local.housekeeping)."""
    run(device, migrations=TEST_MIGRATIONS, config=fast_config())
    stats = dict(
        query(device, "SELECT tbl, max(CAST(stat AS INTEGER)) FROM sqlite_stat1 GROUP BY tbl")
    )
    rows = {t: query(device, f'SELECT count(*) FROM "{t}"')[0][0] for t in stats}
    assert all(n >= 1000 for n in rows.values()), rows
