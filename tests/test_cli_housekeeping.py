"""A write that committed is reported as done even when the housekeeping after it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
import duru.cli.device
from duru.cli import app
from duru.errors import StoreError
from duru.local import Database, DeviceStore


def test_full_disk_during_housekeeping_keeps_the_saved_note_and_exit_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "d.sqlite"

    def disk_full(_: Database) -> None:
        raise StoreError(f"{db}: the disk is full (database or disk is full); free some space")

    # Fault injection: the checkpoint after the commit hits a full disk.
    monkeypatch.setattr(duru.cli.device, "maintain", disk_full)
    result = CliRunner().invoke(app, ["note", "add", "Saved anyway", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "saved; housekeeping postponed" in result.output
    with DeviceStore.open(db) as store:
        assert [n["title"] for n in store.notes.list_recent()] == ["Saved anyway"]
