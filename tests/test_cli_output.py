"""What the terminal sees: control characters escaped, --version, exit codes, note filters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from test_cli import data, invoke, ok

import duru
from duru.cli.output import visible

RED = "\x1b[31mred"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    ok(path, "init")
    return path


def test_visible_escapes_what_a_terminal_obeys() -> None:
    assert visible(RED) == "\\x1b[31mred"
    assert visible("a\u202eb\x9bc\x7f\x00") == "a\\u202eb\\x9bc\\x7f\\x00"
    assert visible("one\ntwo\tthree\r") == "one\\ntwo\\tthree\\r"
    assert visible("one\r\ntwo\tx\rz", lines=True) == "one\ntwo\tx\\rz"
    kept = "東京 会議 🎉 👩‍💻 café [[x]] **b** \\x1b"  # a ZWJ emoji and a typed backslash stay
    assert visible(kept) == kept


def test_control_characters_in_user_text_never_reach_the_terminal(db: Path) -> None:
    note = data(db, "note", "add", RED, "--body", "ok\x07\nline\x1b]0;title\x07", "-t", "t\x1b[1m")
    folder = data(db, "folder", "add", "f\x1b[2J")
    ok(db, "folder", "file", note["id"], folder["id"])
    task = data(db, "task", "add", note["id"], "do \x1b[5m it")
    outputs = [
        ok(db, "note", "add", "x\x1b[31m"),
        ok(db, "note", "list"),
        ok(db, "note", "show", note["id"]),
        ok(db, "note", "edit", note["id"], "--title", RED),
        ok(db, "tag", "list"),
        ok(db, "tag", "add", note["id"], "u\x1b[4m"),
        ok(db, "folder", "list"),
        ok(db, "task", "list"),
        ok(db, "task", "done", task["id"]),
        ok(db, "note", "pin", note["id"]),
        invoke(db, "note", "show", "\x1b[31mzzzz"),  # the error names what was typed
    ]
    for result in outputs:
        assert "\x1b" not in result.output and "\x07" not in result.output, result.output
    shown = ok(db, "note", "show", note["id"]).stdout
    assert "\\x1b[31mred" in shown and "ok\\x07\nline\\x1b]0;title\\x07" in shown
    # JSON keeps the exact text (escaped the JSON way, parsed back whole).
    assert data(db, "note", "show", note["id"])["note"]["title"] == RED


def test_json_escapes_c1_controls_and_bidi_overrides_but_keeps_the_text(db: Path) -> None:
    title = "a\x9b31mb\u202ec\u2028d"
    ok(db, "note", "add", title)
    raw = ok(db, "note", "list", "--json").stdout
    assert not {"\x9b", "\u202e", "\u2028"} & set(raw)
    assert json.loads(raw)[0]["title"] == title


def test_version_in_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "duru.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"duru {duru.__version__} (device schema ")


def group_names() -> list[str]:
    root = typer.main.get_command(duru.cli.app)
    return sorted(n for n, c in getattr(root, "commands", {}).items() if hasattr(c, "commands"))


@pytest.mark.parametrize("group", ["", *group_names()])
def test_a_group_without_a_subcommand_prints_its_help_and_exits_2(group: str) -> None:
    result = invoke(None, *group.split())
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output and "Commands" in result.output


def test_tag_rename_and_rm_of_a_missing_tag_exit_3(db: Path) -> None:
    note = data(db, "note", "add", "A", "-t", "kept")
    missing = invoke(db, "tag", "rename", "nosuch", "other")
    assert missing.exit_code == 3 and "nosuch" in missing.output
    assert invoke(db, "tag", "rename", "kept", " kept ").exit_code == 2  # the same tag
    assert invoke(db, "tag", "rm", note["id"], "nosuch").exit_code == 3
    assert invoke(db, "tag", "rm", note["id"], "").exit_code == 2
    trashed = data(db, "note", "add", "B", "-t", "old")
    ok(db, "note", "rm", trashed["id"])
    assert data(db, "tag", "rename", "old", "older")["changed"] == 1  # trashed notes count


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("note", "show", "ffffffff"), 3),
        (("note", "show", "ab"), 2),
        (("task", "rm", "ffffffff"), 3),
        (("folder", "rm", "not-a-uuid-at-all"), 3),
        (("note", "purge", "PLACEHOLDER"), 1),  # refused: the note is not in the trash
    ],
)
def test_exit_codes(db: Path, args: tuple[str, ...], code: int) -> None:
    note = data(db, "note", "add", "live")
    typed = [note["id"] if a == "PLACEHOLDER" else a for a in args]
    result = invoke(db, *typed)
    assert result.exit_code == code, result.output
    assert result.output.startswith("duru: ") and "Traceback" not in result.output


def test_note_list_by_tag_and_folder(db: Path) -> None:
    work = data(db, "folder", "add", "Work")
    sub = data(db, "folder", "add", "Sub", "--parent", work["id"])
    ok(db, "note", "add", "a", "-t", "x", "--folder", work["id"])
    ok(db, "note", "add", "b", "-t", "x", "--folder", sub["id"])
    ok(db, "note", "add", "c", "-t", "y", "--folder", work["id"], "--pin")
    ok(db, "note", "add", "d", "-t", "x")
    gone = data(db, "note", "add", "gone", "-t", "x", "--folder", work["id"])
    ok(db, "note", "rm", gone["id"])

    def titles(*args: str) -> list[str]:
        return [n["title"] for n in data(db, "note", "list", *args)]

    assert titles("--tag", "x") == ["d", "b", "a"]
    assert titles("--folder", work["id"][:6]) == ["c", "a"]  # pinned first
    assert titles("--folder", work["id"][:6], "-r") == ["c", "b", "a"]
    assert titles("--tag", "x", "--folder", work["id"][:6]) == ["a"]
    assert titles("--tag", "x", "--folder", work["id"][:6], "-r") == ["b", "a"]
    assert titles("--tag", "x", "--limit", "1", "--offset", "1") == ["b"]
    assert titles("--tag", "nosuch") == []
    assert titles("--tag", " x ") == ["d", "b", "a"]  # a tag is stripped as it is stored
    assert invoke(db, "note", "list", "--folder", "ffffffff").exit_code == 3
    assert invoke(db, "note", "list", "-r").exit_code == 2
    assert invoke(db, "note", "list", "--tag", "x", "--limit", "-1").exit_code == 2
    assert "a" in ok(db, "note", "list", "--tag", "x").stdout
