"""Every command and every option of `duru` has help text (the test fails when one lacks it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from test_cli import ok

import duru.cli.commands  # noqa: F401  (registers the commands)
from duru.cli import app

DEVICE_COMMANDS = {
    "init",
    "import",
    "export",
    "search",
    "demo",
    "note add",
    "note list",
    "note show",
    "note edit",
    "note pin",
    "note unpin",
    "note rm",
    "note restore",
    "note purge",
    "note trash",
    "folder add",
    "folder list",
    "folder rename",
    "folder move",
    "folder rm",
    "folder file",
    "tag add",
    "tag rm",
    "tag rename",
    "tag list",
    "task add",
    "task list",
    "task done",
    "task status",
    "task due",
    "task rm",
    "reminder add",
    "reminder list",
    "reminder show",
    "reminder snooze",
    "reminder off",
    "reminder on",
    "reminder rm",
    "link add",
    "link list",
    "link backlinks",
    "link rm",
    "template add",
    "template list",
    "template show",
    "template rm",
    "template use",
    "saved-search add",
    "saved-search list",
    "saved-search show",
    "saved-search run",
    "saved-search rm",
    "attachment add",
    "attachment list",
    "attachment show",
    "attachment rm",
}


def walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command under ``cmd`` (itself included), with its path of names."""
    yield " ".join(path), cmd
    # Typer builds on its own copy of click, so a group is known by its commands.
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from walk(sub, (*path, name))


def undocumented(root: Any) -> list[str]:
    """Commands and parameters (the built-in --help aside) that have no help text."""
    missing = []
    for name, cmd in walk(root):
        if not (cmd.help or cmd.short_help or "").strip():
            missing.append(name or "duru")
        for param in cmd.params:
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{name or 'duru'}: {param.name}")
    return missing


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    names = {name for name, _ in walk(root)}
    assert DEVICE_COMMANDS <= names, DEVICE_COMMANDS - names
    assert undocumented(root) == []


def test_the_check_catches_a_command_or_option_without_help() -> None:
    bare = typer.Typer(help="The root has help.")

    @bare.command("documented")
    def documented(flag: bool = typer.Option(False, help="Has help.")) -> None:
        """Has help."""

    @bare.command("silent")
    def silent(flag: bool = typer.Option(False), name: str = typer.Argument("x")) -> None:
        pass

    assert undocumented(typer.main.get_command(bare)) == [
        "silent",
        "silent: flag",
        "silent: name",
    ]


def test_help_prints_for_every_command() -> None:
    root = typer.main.get_command(app)
    for name, _ in walk(root):
        if name in DEVICE_COMMANDS:
            assert "Usage" in ok(None, *name.split(), "--help").stdout
