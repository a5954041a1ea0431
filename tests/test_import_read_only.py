"""A WAL-mode legacy file in a read-only folder (issue 11, item 14).

SQLite reads a WAL file through a -shm it makes beside it; in a folder the user
cannot write it cannot, and the import failed with "attempt to write a readonly
database". A checkpointed file (no -wal) is now read alone; one whose -wal still
holds changes is refused with a message that says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from legacy_factory import make_legacy_db

from duru.local.legacy import import_legacy

DURU = Path(sys.executable).with_name("duru")
NOBODY = 65534


def unprivileged() -> list[str]:
    """A command prefix that drops root (root ignores file modes)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("as root, file modes are checked as another user: that needs setpriv")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def folders() -> Iterator[tuple[Path, Path]]:
    """A folder for the legacy file and a writable one for the new database."""
    top = Path(tempfile.mkdtemp(prefix="duru-ro-import-"))
    top.chmod(0o755)
    source, out = top / "app", top / "out"
    source.mkdir()
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    try:
        yield source, out
    finally:
        source.chmod(0o755)
        shutil.rmtree(top)


def wal_legacy(path: Path, pending: bool) -> None:
    """A legacy file in WAL mode; with ``pending`` its -wal holds a note not yet checkpointed."""
    make_legacy_db(path, seed=5, notes=20)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    if pending:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("INSERT INTO local_notes (id, title) VALUES ('late', 'only in the wal')")
        shutil.copyfile(f"{path}-wal", f"{path}.keep")
    conn.close()
    if pending:  # as a crash leaves it: the -wal, no -shm
        os.replace(f"{path}.keep", f"{path}-wal")


def run_import(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*unprivileged(), str(DURU), "import", str(source), "--db", str(target), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_checkpointed_wal_file_imports_from_a_read_only_folder(
    folders: tuple[Path, Path],
) -> None:
    app, out = folders
    legacy = app / "legacy.sqlite"
    wal_legacy(legacy, pending=False)
    reference = import_legacy(legacy, out / "reference.sqlite").to_dict()
    (out / "reference.sqlite").unlink()
    for extra in ("-wal", "-shm"):  # the reference read made them (empty: nothing pending)
        Path(f"{legacy}{extra}").unlink(missing_ok=True)
    before = legacy.read_bytes()
    legacy.chmod(0o444)
    app.chmod(0o555)
    done = run_import(legacy, out / "new.sqlite")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"] == reference["totals"]
    assert sorted(p.name for p in app.iterdir()) == ["legacy.sqlite"]
    assert legacy.read_bytes() == before


def test_changes_left_in_the_wal_are_a_clear_refusal(folders: tuple[Path, Path]) -> None:
    app, out = folders
    legacy = app / "legacy.sqlite"
    wal_legacy(legacy, pending=True)
    app.chmod(0o555)
    done = run_import(legacy, out / "new.sqlite")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert "legacy.sqlite-wal" in line and "writable folder" in line, line
    assert not (out / "new.sqlite").exists()
