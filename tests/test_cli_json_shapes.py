"""Every --json prints a list of row objects when the command lists things, else one object.

The walk covers every command that has --json; one that is added without an entry
here fails the test, so a new command's shape is decided, not left to chance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from legacy_factory import make_legacy_db
from test_cli import invoke
from test_cli_help import walk

import duru.cli.commands  # noqa: F401  (registers the commands)
from duru.cli import app

# Commands that list things: their --json is a list of objects, one per row.
LISTS = {
    "search",
    "note list",
    "note trash",
    "folder list",
    "tag list",
    "task list",
    "reminder list",
    "link list",
    "link backlinks",
    "template list",
    "saved-search list",
    "saved-search run",
    "attachment list",
    "migrate history",
    "conflicts list",
}
EMPTY = {"migrate history", "conflicts list"}  # a device made by this duru has no migration runs
# Commands not run here, and why (each is covered by its own tests).
NOT_RUN = {
    "demo": "starts an embedded PostgreSQL (tests/test_cli_demo.py)",
    "sync": "needs a sync server (tests/test_sync.py)",
    "upload": "needs PostgreSQL (tests/test_cli_transfer.py)",
    "download": "needs PostgreSQL (tests/test_cli_transfer.py)",
    "schema check": "compares with a server database too (tests/test_schema_check.py)",
    "migrate run": "a device of this schema has nothing to run (tests/test_cli_migrate.py)",
    "migrate resume": "needs an interrupted run (tests/test_device_half_migrated.py)",
    "migrate rollback": "needs a run (tests/test_cli_migrate.py)",
    "conflicts show": "needs a conflict, so two synced devices (tests/test_sync.py)",
    "conflicts resolve": "needs a conflict, so two synced devices (tests/test_sync.py)",
}
# In order; {name} is the id of the row an earlier step printed as "name".
STEPS: list[tuple[str, str, list[str]]] = [
    ("folder", "folder add", ["Work 東京"]),
    ("sub", "folder add", ["Sub", "--parent", "{folder}"]),
    ("note", "note add", ["Groceries 🎉", "-t", "home", "--folder", "{folder}"]),
    ("other", "note add", ["Sync protocol", "--body", "design"]),
    ("", "note list", []),
    ("", "note show", ["{note}"]),
    ("", "note edit", ["{note}", "--title", "Shopping"]),
    ("", "note pin", ["{note}"]),
    ("", "note unpin", ["{note}"]),
    ("", "folder list", []),
    ("", "folder rename", ["{sub}", "Sub 2"]),
    ("", "folder move", ["{sub}", "--top"]),
    ("", "folder file", ["{other}", "{sub}"]),
    ("", "tag add", ["{note}", "food"]),
    ("", "tag list", []),
    ("", "conflicts list", []),
    ("", "tag rename", ["food", "groceries"]),
    ("", "tag rm", ["{note}", "groceries"]),
    ("task", "task add", ["{note}", "buy milk", "--due", "2030-01-01"]),
    ("", "task list", []),
    ("", "task done", ["{task}"]),
    ("", "task status", ["{task}", "open"]),
    ("", "task due", ["{task}", "--clear"]),
    ("reminder", "reminder add", ["{note}", "2030-01-01", "--title", "go"]),
    ("", "reminder list", ["--since", "2029-01-01"]),
    ("", "reminder show", ["{reminder}"]),
    ("", "reminder snooze", ["{reminder}", "2030-02-01"]),
    ("", "reminder off", ["{reminder}"]),
    ("", "reminder on", ["{reminder}"]),
    ("link", "link add", ["{note}", "Sync protocol"]),
    ("", "link list", ["{note}"]),
    ("", "link backlinks", ["{other}"]),
    ("template", "template add", ["Weekly", "--body", "agenda"]),
    ("", "template list", []),
    ("", "template show", ["{template}"]),
    ("made", "template use", ["{template}"]),
    ("saved", "saved-search add", ["designs", "design"]),
    ("", "saved-search list", []),
    ("", "saved-search show", ["{saved}"]),
    ("", "saved-search run", ["{saved}"]),
    ("", "search", ["design"]),
    ("attachment", "attachment add", ["{note}", "scan.pdf", "--size", "3"]),
    ("", "attachment list", ["{note}"]),
    ("", "attachment show", ["{attachment}"]),
    ("", "migrate status", ["--db", "{db}"]),
    ("", "migrate plan", ["--db", "{db}"]),
    ("", "migrate history", ["--db", "{db}"]),
    ("", "monitor", ["--db", "{db}"]),
    ("", "import", ["{legacy}", "--db", "{imported}"]),
    ("", "restore", ["{backup}", "--db", "{restored}"]),
    ("", "attachment rm", ["{attachment}"]),
    ("", "saved-search rm", ["{saved}"]),
    ("", "template rm", ["{template}"]),
    ("", "link rm", ["{link}"]),
    ("", "reminder rm", ["{reminder}"]),
    ("", "task rm", ["{task}"]),
    ("", "note rm", ["{made}"]),
    ("", "note trash", []),
    ("", "note restore", ["{made}"]),
    ("", "note rm", ["{made}"]),
    ("", "note purge", ["{made}"]),
    ("", "folder rm", ["{sub}"]),
]


def json_commands() -> set[str]:
    root = typer.main.get_command(app)
    return {
        name
        for name, cmd in walk(root)
        if any("--json" in getattr(p, "opts", ()) for p in cmd.params)
    }


def test_every_json_command_is_walked_or_excused() -> None:
    walked = {command for _, command, _ in STEPS}
    assert json_commands() == walked | set(NOT_RUN)
    assert LISTS <= walked


def test_every_json_command_prints_rows_or_one_object(tmp_path: Path) -> None:
    db = tmp_path / "device.sqlite"
    assert invoke(db, "init").exit_code == 0
    legacy = tmp_path / "legacy.sqlite"
    make_legacy_db(legacy, seed=1, notes=5, traps=False)
    backup = tmp_path / "backup.json"
    assert invoke(db, "export", "--out", str(backup)).exit_code == 0
    ids: dict[str, str] = {
        "db": str(db),
        "legacy": str(legacy),
        "imported": str(tmp_path / "imported.sqlite"),
        "backup": str(backup),
        "restored": str(tmp_path / "restored.sqlite"),
    }
    for name, command, args in STEPS:
        typed = [a.format(**ids) for a in args]
        result = invoke(db, *command.split(), *typed, "--json")
        assert result.exit_code == 0, f"{command}: {result.output}"
        value: Any = json.loads(result.stdout)
        if command in LISTS:
            assert isinstance(value, list), f"{command}: {value!r}"
            assert value or command in EMPTY, f"{command} listed nothing: the walk checks no row"
            assert all(isinstance(row, dict) for row in value), command
        else:
            assert isinstance(value, dict), f"{command}: {value!r}"
        if name:
            ids[name] = value["id"]
