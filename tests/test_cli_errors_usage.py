"""Usage errors that click itself raises are one line too, never a usage box."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app


@pytest.mark.parametrize(
    "args",
    [["note", "list", "--limit", "abc"], ["nosuch"], ["note", "show"], ["search", "--bogus", "x"]],
)
def test_click_usage_errors_are_one_line(args: list[str], tmp_path: object) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("duru: ") and "--help" in lines[0]
    assert "Traceback" not in result.output
