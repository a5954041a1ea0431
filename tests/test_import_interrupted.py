"""A `duru import` killed half-way (issue 11, item 13): no empty database left behind.

The import builds its database in a partial file beside the target and names it
only when complete. Killed (SIGKILL, SIGTERM), it leaves no target: every command
on the target says the import did not finish, and running the import again starts
it over and ends with exactly what an uninterrupted import makes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from legacy_factory import make_legacy_db

from duru.local import DeviceStore
from duru.local.legacy import import_legacy

DURU = Path(sys.executable).with_name("duru")
COUNTS = ("read", "imported", "merged", "quarantined")


def start_import(legacy: Path, target: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(DURU), "import", str(legacy), "--db", str(target), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def partial_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial*"))


def wait_mid_import(folder: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Return once the import writes rows into its database (its WAL grows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wal = [p for p in folder.glob("*-wal") if p.stat().st_size > 64 * 1024]
        if wal:
            return
        assert proc.poll() is None, "the import ended before it could be killed"
        time.sleep(0.002)
    raise AssertionError("the import wrote nothing in time")


def counts(report: dict[str, object]) -> dict[str, dict[str, int]]:
    tables = report["tables"]
    assert isinstance(tables, dict)
    return {name: {k: t[k] for k in COUNTS} for name, t in tables.items()}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A legacy file big enough to kill its import mid-way, and its uninterrupted report."""
    folder = tmp_path_factory.mktemp("legacy")
    path = folder / "legacy.sqlite"
    make_legacy_db(path, seed=31, notes=3000)
    return path, import_legacy(path, folder / "reference.sqlite").to_dict()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_import_leaves_no_database_and_the_rerun_starts_over(
    tmp_path: Path, legacy: tuple[Path, dict[str, object]], sig: signal.Signals
) -> None:
    source, reference = legacy
    target = tmp_path / "new.sqlite"
    proc = start_import(source, target)
    wait_mid_import(tmp_path, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode == -sig
    assert not target.exists(), "a killed import left a database under the final name"
    assert partial_files(tmp_path), "the partial build is what tells the next commands"
    for args in (("note", "list"), ("note", "add", "x"), ("init",), ("export",)):
        done = subprocess.run(
            [str(DURU), *args, "--db", str(target)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1 and done.stdout == "", (args, done.stdout)
        (line,) = done.stderr.splitlines()
        assert "import into" in line and "did not finish" in line, line
        assert not target.exists()
    again = start_import(source, target)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    report = json.loads(out)
    assert counts(report) == counts(reference)
    assert any("did not finish: started over" in w for w in report["warnings"])
    assert partial_files(tmp_path) == []
    with DeviceStore.open(target, create=False) as store:
        imported = reference["totals"]
        assert isinstance(imported, dict)
        assert store.db.scalar("SELECT count(*) FROM outbox") == imported["imported"]


def test_two_imports_at_once_make_one_database(
    tmp_path: Path, legacy: tuple[Path, dict[str, object]]
) -> None:
    source, reference = legacy
    target = tmp_path / "new.sqlite"
    procs = [start_import(source, target) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and codes[1] != 0, results
    loser = next(err for p, (_, err) in zip(procs, results, strict=True) if p.returncode)
    assert len(loser.splitlines()) == 1 and str(target) in loser, loser
    winner = next(out for p, (out, _) in zip(procs, results, strict=True) if not p.returncode)
    assert counts(json.loads(winner)) == counts(reference)
    assert partial_files(tmp_path) == []
    with DeviceStore.open(target, create=False) as store:
        assert store.db.rows("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
