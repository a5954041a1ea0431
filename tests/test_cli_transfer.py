"""`duru upload` and `duru download` from the command line, against a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app
from duru.local import DeviceStore, export_json

runner = CliRunner()


def _device(path: Path) -> None:
    with DeviceStore.open(path) as store:
        folder = store.folders.create("Work")
        note = store.notes.create("Design review", "the agenda", folder_id=folder["id"], tags=["w"])
        store.tasks.create(note["id"], "write it up", due_date=1_700_000_000_000)


def test_upload_then_download_reproduces_the_export(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    env = {"DURU_PASSPHRASE": "correct horse battery staple"}
    up = runner.invoke(
        app,
        ["upload", "--db", str(tmp_path / "a.sqlite"), "--user", "ana", "--server", pg_url],
        env=env,
    )
    assert up.exit_code == 0, up.output
    assert "upload of ana" in up.output
    down = runner.invoke(
        app,
        ["download", "--db", str(tmp_path / "b.sqlite"), "--user", "ana"]
        + ["--server", pg_url, "--json"],
        env=env,
    )
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout)["rows"] >= 4
    with DeviceStore.open(tmp_path / "a.sqlite") as a, DeviceStore.open(tmp_path / "b.sqlite") as b:
        assert export_json(a.db) == export_json(b.db)


def test_download_with_a_wrong_passphrase_is_one_line(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    args = ["--user", "ana", "--server", pg_url]
    up = runner.invoke(
        app, ["upload", "--db", str(tmp_path / "a.sqlite"), *args], env={"DURU_PASSPHRASE": "one"}
    )
    assert up.exit_code == 0, up.output
    down = runner.invoke(
        app, ["download", "--db", str(tmp_path / "b.sqlite"), *args], env={"DURU_PASSPHRASE": "two"}
    )
    assert down.exit_code == 1
    lines = [line for line in down.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "passphrase" in lines[0], down.output
    assert not (tmp_path / "b.sqlite").exists() or (tmp_path / "b.sqlite").stat().st_size == 0


def test_upload_without_a_passphrase_says_how_to_give_one(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    result = runner.invoke(
        app,
        ["upload", "--db", str(tmp_path / "a.sqlite"), "--server", pg_url],
        env={"DURU_PASSPHRASE": None},
    )
    assert result.exit_code == 2
    assert "DURU_PASSPHRASE" in result.output
