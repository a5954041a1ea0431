"""`duru monitor --check`: thresholds from configuration, exit 0 when fine and 1 on an alert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import invoke
from test_monitor import stuck_device

from duru.monitor import Thresholds, load_thresholds


def test_check_exits_1_on_a_stuck_outbox_and_0_once_the_thresholds_allow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = stuck_device(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke(None, "monitor", "--db", str(path), "--check")
    assert result.exit_code == 1
    assert "alert outbox_depth" in result.stdout and "alert outbox_age" in result.stdout
    assert "pages" not in result.stdout  # --check prints only the alerts
    (tmp_path / "duru.toml").write_text(
        "[monitor]\noutbox_rows = 5000\noutbox_age_seconds = 604800\n"
    )
    result = invoke(None, "monitor", "--db", str(path), "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no alerts"


def test_check_json_prints_the_alerts(tmp_path: Path) -> None:
    path = stuck_device(tmp_path)
    result = invoke(None, "monitor", "--db", str(path), "--check", "--json")
    assert result.exit_code == 1
    alerts = json.loads(result.stdout)["alerts"]
    assert {a["rule"] for a in alerts} == {"outbox_depth", "outbox_age"}
    assert all(a["threshold"] is not None for a in alerts)


def test_pyproject_wins_over_duru_toml_and_config_names_a_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.duru.monitor]\nbloat_ratio = 0.8\n")
    (tmp_path / "duru.toml").write_text("[monitor]\nbloat_ratio = 0.3\n")
    assert load_thresholds(folder=tmp_path).bloat_ratio == 0.8
    assert load_thresholds(tmp_path / "duru.toml").bloat_ratio == 0.3
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # no monitor table
    assert load_thresholds(folder=tmp_path).bloat_ratio == 0.3
    assert load_thresholds(folder=tmp_path / "none") == Thresholds()


def test_a_bad_threshold_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[monitor]\noutbox_rows = 'many'\n")
    db = tmp_path / "d.sqlite"
    assert invoke(db, "init").exit_code == 0
    result = invoke(None, "monitor", "--db", str(db), "--check", "--config", str(config))
    assert result.exit_code == 2
    assert "outbox_rows must be a number" in result.output
    result = invoke(None, "monitor", "--db", str(db), "--config", str(tmp_path / "no.toml"))
    assert result.exit_code == 2 and "no configuration file" in result.output
