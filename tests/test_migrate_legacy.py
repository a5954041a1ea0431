"""The flagship device migration: a version 11 app file upgraded in place equals its import.

``run(LEGACY.sqlite)`` must leave exactly what ``duru import`` makes of the
same file (compared through ``export_all``; only the run's own timestamps,
the stand-ins for dates the file lacks and when rows were quarantined,
differ), with a backup, an audit trail and rollback points, and it must
survive being killed anywhere in its stream.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from legacy_factory import make_legacy_db
from migrate_support import BOOKKEEPING, dump

from duru.errors import SchemaMismatch
from duru.local.db import Database
from duru.local.export import export_all
from duru.local.legacy import LEGACY_TABLES, import_legacy
from duru.migrate.config import RunConfig
from duru.migrate.sqlite.engine import history, plan, resume, rollback, run, status
from duru.migrate.sqlite.rollback import points
from duru.model import now_ms
from duru.schemacheck.device import compare_device, introspect_device, open_read_only

WORKER = Path(__file__).with_name("migrate_support.py")
Window = tuple[int, int]


def timed(fn: Callable[[], Any]) -> Window:
    start = now_ms()
    fn()
    return start, now_ms()


def export(path: Path, window: Window) -> dict[str, list[dict[str, Any]]]:
    """``export_all`` with the run's own timestamps (inside ``window``) made equal."""
    lo, hi = window

    def same(value: object) -> object:
        return "<time of the run>" if isinstance(value, int) and lo <= value <= hi else value

    with Database.open(path) as db:
        found = export_all(db)
    return {t: [{k: same(v) for k, v in r.items()} for r in rows] for t, rows in found.items()}


@pytest.fixture(scope="module")
def legacy(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """A v11 file with every trap, and the export of its import."""
    folder = tmp_path_factory.mktemp("legacy")
    source = folder / "legacy.sqlite"
    make_legacy_db(source, seed=11, notes=80)
    imported = folder / "imported.db"
    window = timed(lambda: import_legacy(source, imported))
    return source, export(imported, window)


@pytest.fixture
def copy(tmp_path: Path, legacy: tuple[Path, object]) -> Path:
    path = tmp_path / "LEGACY.sqlite"
    shutil.copyfile(legacy[0], path)
    return path


def test_in_place_upgrade_equals_the_import(
    copy: Path, legacy: tuple[Path, dict[str, list[dict[str, Any]]]]
) -> None:
    original = dump(copy)
    report: list[Any] = []
    window = timed(lambda: report.append(run(copy)))
    assert report[0].status == "done"
    assert export(copy, window) == legacy[1]
    quarantined = legacy[1]["quarantine"]
    assert quarantined and report[0].quarantined == len(quarantined)
    # A duru device file now: it opens with the model check, and no v11 table is left.
    with Database.open(copy) as db:
        assert db.meta("schema_version") == "1" and db.meta("device_id")
        names = {r["name"] for r in db.rows("SELECT name FROM sqlite_schema")}
        assert not [n for n in names if n.startswith("_duru_") or n in ("local_notes", "fts_notes")]
        assert db.rows("PRAGMA foreign_key_check") == []
        assert db.scalar("SELECT count(*) FROM outbox") == sum(
            len(legacy[1][e]) for e in legacy[1] if e != "quarantine"
        )
    # The schema check finds nothing wrong (its only remarks: the engine's own tables).
    conn = open_read_only(copy)
    remarks = compare_device(introspect_device(conn))
    conn.close()
    assert [m for m in remarks if m.severity == "error"] == []
    assert {m.table for m in remarks} <= set(BOOKKEEPING)
    # The backup holds the v11 file as it was.
    backup = report[0].backup_path
    assert backup is not None
    assert {t: r for t, r in dump(Path(backup)).items() if not t.startswith("duru_")} == original


def test_plan_of_a_legacy_file(copy: Path) -> None:
    p = plan(copy)
    assert (p.source_version, p.target_version) == ("legacy:11", "1")
    keys = [s.key for s in p.steps]
    stream = next(s for s in p.steps if s.kind == "stream")
    assert keys.index(stream.key) > max(
        i for i, s in enumerate(p.steps) if s.phase.label == "bridge"
    )
    drops = [s for s in p.steps if s.title.startswith("drop table _duru_legacy_")]
    assert len(drops) == len(LEGACY_TABLES) and {s.phase.label for s in drops} == {"cleanup"}
    assert status(copy).pending == ("0001_legacy_v11",)


def test_rollback_and_resume_through_the_stream(
    copy: Path, legacy: tuple[Path, dict[str, list[dict[str, Any]]]]
) -> None:
    original = dump(copy)
    run(copy, config=RunConfig(max_chunk=50))  # a checkpoint every 50 writes
    conn = sqlite3.connect(copy)
    stream = [p for p in points(conn) if p.step.endswith(".copy") and p.hwm is not None]
    conn.close()
    assert len(stream) > 3
    middle = stream[len(stream) // 2]
    rollback(copy, to=middle.id)
    assert status(copy).version == "legacy:11"
    # Resuming replays the import up to the checkpoint without writing, then carries on.
    window = timed(lambda: resume(copy))
    assert export(copy, (window[0] - 10**7, window[1])) == legacy[1]
    trail = history(copy)[-1].rows
    closing = [r for r in trail if r.kind == "step" and r.step == middle.step and r.status == "ok"]
    assert closing[-1].details["replayed"] == middle.hwm
    rollback(copy)
    assert {t: r for t, r in dump(copy).items() if not t.startswith("duru_")} == original


def test_a_file_that_is_neither_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something (x)")
    conn.close()
    with pytest.raises(SchemaMismatch, match="neither a duru device database"):
        plan(path)


def _worker(path: Path) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "run-device", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, time.perf_counter()


@pytest.mark.slow
def test_sigkill_during_the_upgrade_then_resume(tmp_path: Path) -> None:
    rng = random.Random(1112)
    source = tmp_path / "legacy.sqlite"
    make_legacy_db(source, seed=12, notes=300)
    imported = tmp_path / "imported.db"
    expected = export(imported, timed(lambda: import_legacy(source, imported)))
    timing = tmp_path / "timing.sqlite"
    shutil.copyfile(source, timing)
    proc, ready = _worker(timing)
    assert proc.wait() == 0
    full = time.perf_counter() - ready
    proc.communicate()
    kills = 0
    for round_no in range(3):
        path = tmp_path / f"round{round_no}.sqlite"
        shutil.copyfile(source, path)
        start = now_ms()
        for share in (0.9, 0.6):
            proc, _ = _worker(path)
            try:
                proc.wait(timeout=rng.uniform(0.0, full * share))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            assert proc.returncode in (0, -signal.SIGKILL), err
            kills += proc.returncode == -signal.SIGKILL
        run(path)
        assert export(path, (start, now_ms())) == expected, f"round {round_no}"
        trail = history(path)[-1].rows
        assert not [r for r in trail if r.status in ("running", "failed")]
    # Random kill times may all miss the stream on a busy machine: one more kill, sent as
    # soon as the stream has committed its first checkpoint, always lands inside it.
    path = tmp_path / "after_checkpoint.sqlite"
    shutil.copyfile(source, path)
    start = now_ms()
    proc, _ = _worker(path)
    try:
        _wait_for_checkpoint(path, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    run(path)
    assert export(path, (start, now_ms())) == expected, "killed after a checkpoint"
    stream = [r for r in history(path)[-1].rows if r.step.endswith("22.copy")]
    after_checkpoint = [r.details.get("replayed", 0) for r in stream if r.kind == "step"]
    assert kills >= 4
    assert any(after_checkpoint), "the kill after a checkpoint replayed nothing"


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen[str]) -> None:
    """Return once the worker's stream has committed a checkpoint (an audit chunk row)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the upgrade ended before its stream checkpointed"
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=0.05)) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM duru_migration_audit"
                    " WHERE step LIKE '%22.copy' AND kind = 'chunk'"
                ).fetchone()
        except sqlite3.Error:  # not made yet, or locked for a moment
            found = None
        if found and found[0]:
            return
        time.sleep(0.002)
    raise AssertionError("the stream never checkpointed")
