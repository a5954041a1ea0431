"""SIGKILL a migration at random moments; every resume must finish with every row exactly once.

A worker process (``tests/migrate_support.py``) runs the test migration on a
copy of a generated file and is killed with SIGKILL after a random, seeded
delay; sometimes the process that resumes is killed too. The run is then
finished in this process and the file compared with an uninterrupted run:
same rows (with their rowids: a row copied twice or lost would show), same
quarantine, same schema, and an audit trail in which every started step ended
or was closed as interrupted and pointed at the row that carried on.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from migrate_support import TEST_MIGRATIONS, dump, fast_config, make_device_file, schema

from duru.migrate.sqlite.engine import history, run

WORKER = Path(__file__).with_name("migrate_support.py")
SEED = 20261124
KILLS = 22
MAX_ROUNDS = 40


def start_worker(db: Path) -> tuple[subprocess.Popen[str], float]:
    """A worker running the migration on ``db``, and when it reported ready."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "run", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read() if proc.stderr else line
    return proc, time.perf_counter()


def finish(proc: subprocess.Popen[str]) -> int:
    _, err = proc.communicate()
    code = proc.returncode
    assert code in (0, -signal.SIGKILL), err
    return code


def kill_after(db: Path, delay: float, places: list[str]) -> bool:
    """Run a worker and SIGKILL it after ``delay`` seconds; True when it died by the kill."""
    proc, _ = start_worker(db)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    killed = finish(proc) == -signal.SIGKILL
    if killed:
        places.append(where(db))
    return killed


def where(db: Path) -> str:
    """Where a killed run stopped: its step still running, else the last step done."""
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
        if "duru_migration_progress" not in tables:
            return "before the run started"
        found = conn.execute(
            "SELECT step, state, hwm FROM duru_migration_progress ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    if found is None:
        return "run started, no step yet"
    step, state, hwm = found
    if state == "running":
        return f"in {step}" + (" mid-copy" if hwm is not None else "")
    return f"after {step}"


def assert_whole_trail(db: Path) -> None:
    runs = history(db)
    assert [h.run.status for h in runs] == ["done"]
    trail = runs[0].rows
    by_id = {r.id: r for r in trail}
    assert not [r for r in trail if r.status in ("running", "failed")]
    for r in trail:
        if r.status == "interrupted":
            successor = by_id[r.details["resumed_by"]]
            assert successor.id > r.id and successor.step == r.step
    closing = {}
    for r in trail:
        if r.kind == "step" and r.status == "ok":
            assert r.step not in closing, f"{r.step} finished twice"
            closing[r.step] = r
    assert set(closing) == set(_plan_keys(db))
    for step in {r.step for r in trail if r.kind == "chunk"}:
        chunks = [r for r in trail if r.kind == "chunk" and r.step == step]
        # Each chunk starts where the one before ended: nothing copied twice, nothing skipped.
        assert [c.details["from"] for c in chunks[1:]] == [c.details["hwm"] for c in chunks[:-1]]
        assert chunks[0].details["from"] is None
        assert sum(c.rows for c in chunks) == closing[step].rows


def _plan_keys(db: Path) -> list[object]:
    conn = sqlite3.connect(db)
    try:
        keys = conn.execute(
            "SELECT step FROM duru_migration_progress WHERE state = 'done'"
        ).fetchall()
        return [k[0] for k in keys]
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    base = make_device_file(tmp_path / "base.db", notes=1500, tags_per_note=3, seed=SEED)
    reference = tmp_path / "reference.db"
    shutil.copyfile(base, reference)
    run(reference, migrations=TEST_MIGRATIONS, config=fast_config(target_chunk_seconds=0.02))
    expected, expected_schema = dump(reference), schema(reference)

    timed = tmp_path / "timed.db"
    shutil.copyfile(base, timed)
    proc, ready = start_worker(timed)
    assert finish(proc) == 0
    full = time.perf_counter() - ready

    kills = 0
    places: list[str] = []
    round_no = 0
    while kills < KILLS and round_no < MAX_ROUNDS:
        round_no += 1
        db = tmp_path / f"round{round_no}.db"
        shutil.copyfile(base, db)
        kills += kill_after(db, rng.uniform(0.0, full * 0.9), places)
        for _ in range(rng.choice((1, 1, 2))):
            kills += kill_after(db, rng.uniform(0.0, full * 0.6), places)
        run(db, migrations=TEST_MIGRATIONS, config=fast_config())
        assert dump(db) == expected, f"round {round_no}"
        assert schema(db) == expected_schema
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
        assert_whole_trail(db)
    assert kills >= KILLS, f"only {kills} kills landed in {round_no} rounds: {places}"
    # The kills hit the run all over: before it, mid-copy, and between steps.
    assert any("mid-copy" in p for p in places), places
    assert len(set(places)) >= 6, places
