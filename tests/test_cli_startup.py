"""Light commands start without the heavy libraries (issue 12, item 5: the CLI's start-up).

Each case runs the real `duru` entry point in a fresh interpreter and lists the modules
it imported; nothing is timed (speed is measured in benchmarks/bench_cli_startup.py).
A module-level import of psycopg, the sync server or the migration linter in any
command module makes these fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from duru.cli import reminder, task
from duru.cli.device import choices
from duru.model import RECURRENCE, TASK_PRIORITY, TASK_STATUS

# The entry point as the console script runs it; the modules it imported go to a file.
PROBE = """
import json, sys
out, *args = sys.argv[1:]
sys.argv = ["duru", *args]
from duru.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""

# Libraries that only some commands need (server, sync, crypto, PostgreSQL, linting).
HEAVY = {
    "httpcore",
    "httpx",
    "nacl",
    "pglast",
    "prometheus_client",
    "psycopg",
    "psycopg_pool",
    "sqlglot",
    "starlette",
    "uvicorn",
}
# duru's own layers that no help text needs.
DURU_LAYERS = {
    "duru.model",
    "duru.bridge",
    "duru.crypto",
    "duru.demo",
    "duru.local",
    "duru.migrate",
    "duru.monitor",
    "duru.remote",
    "duru.server",
    "duru.sync",
}


def run(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """Run `duru ARGS` in a new interpreter: exit code, imported modules, stdout."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), done.stderr
    probe = json.loads(out.read_text())
    return probe["code"], set(probe["modules"]), done.stdout


def loaded(modules: set[str], packages: set[str]) -> list[str]:
    """The modules of ``packages`` (and their submodules) among ``modules``."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("note", "--help"),
        ("note", "list", "--help"),
        ("sync", "--help"),
        ("migrate", "--help"),
        ("migrate", "lint", "--help"),
        ("serve", "--help"),
        ("monitor", "--help"),
        ("--version",),
    ],
    ids=" ".join,
)
def test_help_imports_no_library_layer(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, modules, stdout = run(tmp_path, *args)
    assert code == 0
    assert "duru" in stdout
    assert loaded(modules, HEAVY) == []
    # --version names the device schema and the model fingerprint, so it reads them.
    layers = DURU_LAYERS - {"duru.local", "duru.model"} if args == ("--version",) else DURU_LAYERS
    assert loaded(modules, layers) == []


def test_note_list_json_imports_the_store_only(tmp_path: Path) -> None:
    db = str(tmp_path / "device.db")
    code, _, _ = run(tmp_path, "note", "add", "Groceries", "--db", db)
    assert code == 0
    code, modules, stdout = run(tmp_path, "note", "list", "--json", "--db", db)
    assert code == 0
    assert [n["title"] for n in json.loads(stdout)] == ["Groceries"]
    assert "duru.local" in modules
    # JSON needs no tables: Rich stays out too.
    assert loaded(modules, HEAVY | {"rich"}) == []
    assert loaded(modules, DURU_LAYERS - {"duru.local", "duru.model"}) == []


def test_note_list_table_imports_no_help_renderer(tmp_path: Path) -> None:
    db = str(tmp_path / "device.db")
    code, _, _ = run(tmp_path, "init", "--db", db)
    assert code == 0
    code, modules, stdout = run(tmp_path, "note", "list", "--db", db)
    assert code == 0
    assert "Notes" in stdout
    # A table needs rich.table, not typer's help renderer (Markdown, syntax colours).
    assert "rich.table" in modules
    assert loaded(modules, HEAVY | {"markdown_it", "pygments", "rich.progress"}) == []


def test_lint_imports_no_server_or_sync(tmp_path: Path) -> None:
    sql = tmp_path / "0001_pinned.sql"
    sql.write_text("ALTER TABLE notes ADD COLUMN pinned boolean;\n")
    code, modules, _ = run(tmp_path, "migrate", "lint", str(sql))
    assert code in (0, 1)  # findings or none; a crash or usage error is neither
    assert "duru.migrate.lint" in modules
    no_lint_needs = HEAVY - {"pglast", "sqlglot"}
    assert loaded(modules, no_lint_needs) == []
    assert loaded(modules, {"duru.server", "duru.sync", "duru.remote", "duru.crypto"}) == []


def test_choices_written_in_the_help_are_the_models() -> None:
    # Written out so that the help does not import the model; they must not drift from it.
    assert task.PRIORITIES == choices(TASK_PRIORITY)
    assert task.STATUSES == choices(TASK_STATUS)
    assert reminder.RECURRENCES == choices(RECURRENCE)
