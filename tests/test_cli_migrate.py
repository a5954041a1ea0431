"""`duru migrate plan|run|status|history|rollback|resume` from the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
from legacy_factory import make_legacy_db
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app
from duru.local import DeviceStore, export_all
from duru.local.legacy import import_legacy
from duru.migrate import rollback, run
from duru.migrate.config import RunConfig
from duru.migrate.sqlite.rollback import points
from duru.remote.schema import apply_server_schema

runner = CliRunner()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_legacy_file_upgrades_in_place_like_the_import(tmp_path: Path) -> None:
    legacy = tmp_path / "app.sqlite"
    make_legacy_db(legacy, seed=11)
    imported = tmp_path / "imported.sqlite"
    import_legacy(legacy, imported)

    planned = json.loads(_ok("migrate", "plan", "--db", str(legacy), "--json"))
    assert planned["source_version"] == "legacy:11" and planned["steps"]
    done = json.loads(_ok("migrate", "run", "--db", str(legacy), "--json"))
    assert done["status"] == "done"

    # Row for row equality (modulo the run's own timestamps) is tests/test_migrate_legacy.py's.
    with DeviceStore.open(legacy) as migrated, DeviceStore.open(imported) as reference:
        counts = {t: len(rows) for t, rows in export_all(migrated.db).items()}
        assert counts == {t: len(rows) for t, rows in export_all(reference.db).items()}
    status = json.loads(_ok("migrate", "status", "--db", str(legacy), "--json"))
    assert status["version"] == status["target_version"]
    audit = json.loads(_ok("migrate", "history", "--db", str(legacy), "--json"))
    assert audit and all(row["status"] != "running" for row in audit)


def test_rollback_returns_the_legacy_file(tmp_path: Path) -> None:
    legacy = tmp_path / "app.sqlite"
    make_legacy_db(legacy, seed=5)
    _ok("migrate", "run", "--db", str(legacy))
    _ok("migrate", "rollback", "--db", str(legacy))
    status = json.loads(_ok("migrate", "status", "--db", str(legacy), "--json"))
    assert status["version"] == "legacy:11"


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    legacy = tmp_path / "app.sqlite"
    make_legacy_db(legacy, seed=2)
    before = legacy.read_bytes()
    _ok("migrate", "run", "--db", str(legacy), "--dry-run")
    assert legacy.read_bytes() == before


def test_resume_without_an_unfinished_run_is_one_line(tmp_path: Path) -> None:
    db_path = tmp_path / "d.sqlite"
    _ok("init", "--db", str(db_path))
    result = runner.invoke(app, ["migrate", "resume", "--db", str(db_path)])
    assert result.exit_code == 3
    assert result.output.strip().startswith("duru: ") and "no unfinished" in result.output


def test_server_status_and_plan(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        conn.commit()
    status = json.loads(_ok("migrate", "status", "--server", pg_url, "--json"))
    assert status["version"] == status["target_version"]
    assert "up to date" in _ok("migrate", "plan", "--server", pg_url)


def test_server_status_is_not_up_to_date_on_a_drifted_schema(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        conn.commit()
    assert "up to date" in _ok("migrate", "status", "--server", pg_url)
    with psycopg.connect(pg_url) as conn:  # a hand edit: the version stamp does not change
        conn.execute("ALTER TABLE notes ADD COLUMN title text")
    text = _ok("migrate", "status", "--server", pg_url)
    assert "NOT up to date" in text and "duru schema check" in text, text
    status = json.loads(_ok("migrate", "status", "--server", pg_url, "--json"))
    assert status["up_to_date"] is False and any("title" in d for d in status["drift"])


def test_a_half_migrated_device_says_resume(tmp_path: Path) -> None:
    legacy = tmp_path / "app.sqlite"
    make_legacy_db(legacy, seed=3)
    run(legacy, config=RunConfig(max_chunk=50))
    with sqlite3.connect(legacy) as conn:
        stream = [p for p in points(conn) if p.step.endswith(".copy") and p.hwm is not None]
    rollback(legacy, to=stream[len(stream) // 2].id)  # the run is unfinished again
    text = _ok("migrate", "status", "--db", str(legacy))
    assert "`duru migrate resume`" in text and "migrate run" not in text, text
    _ok("migrate", "resume", "--db", str(legacy))
    assert "half migrated" not in _ok("migrate", "status", "--db", str(legacy))
