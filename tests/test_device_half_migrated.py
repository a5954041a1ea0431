"""A device file a migration run left unfinished names `duru migrate resume`, not `run`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from legacy_factory import make_legacy_db
from test_cli import invoke, ok

from duru.errors import SchemaMismatch
from duru.local import Database, DeviceStore
from duru.migrate import rollback, run
from duru.migrate.config import RunConfig
from duru.migrate.sqlite.rollback import points


def half_migrated(path: Path) -> Path:
    """A legacy file migrated, then rolled back to a point mid-copy: its run is unfinished."""
    make_legacy_db(path, seed=3)
    run(path, config=RunConfig(max_chunk=50))
    with sqlite3.connect(path) as conn:
        stream = [p for p in points(conn) if p.step.endswith(".copy") and p.hwm is not None]
    rollback(path, to=stream[len(stream) // 2].id)
    return path


def test_opening_a_half_migrated_file_names_resume(tmp_path: Path) -> None:
    (tmp_path / "app dir").mkdir()
    path = half_migrated(tmp_path / "app dir" / "app.sqlite")
    with pytest.raises(SchemaMismatch) as caught:
        DeviceStore.open(path, create=False)
    message = caught.value.message
    assert "half migrated" in message and "migrate run" not in message, message
    assert f"`duru migrate resume --db '{path}'`" in message, message  # quoted: a space

    result = invoke(path, "note", "list")
    assert result.exit_code == 1 and "duru migrate resume" in result.output, result.output
    ok(None, "migrate", "resume", "--db", str(path))
    assert isinstance(ok(path, "note", "list", "--json").stdout, str)


def test_an_old_file_without_a_run_still_says_run(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with Database.open(path) as db, db.transaction():
        db.set_meta("schema_version", "0")
    result = invoke(path, "note", "list")
    assert result.exit_code == 1, result.output
    assert "`duru migrate run --db" in result.output and "resume" not in result.output
