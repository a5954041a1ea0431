"""The `duru` command on a real device database: every device-store command's happy path.

``invoke`` and ``ok`` are shared by the other tests/test_cli_*.py files.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import duru.cli.commands  # noqa: F401  (registers the commands)
from duru.cli import app
from duru.local import DeviceStore

runner = CliRunner()


def invoke(db: Path | None, *args: str, stdin: str | None = None, **env: str | None) -> Result:
    """Run `duru ARGS` in-process, with DURU_DB set to ``db`` (None: unset)."""
    environ: dict[str, str | None] = {"DURU_DB": None if db is None else str(db), **env}
    return runner.invoke(app, list(args), input=stdin, env=environ)


def ok(db: Path | None, *args: str, stdin: str | None = None) -> Result:
    """Run a command that must succeed; fails the test with its output otherwise."""
    result = invoke(db, *args, stdin=stdin)
    assert result.exit_code == 0, f"duru {' '.join(args)}: {result.output}"
    return result


def data(db: Path | None, *args: str) -> Any:
    """Run a command with --json and return the parsed output."""
    return json.loads(ok(db, *args, "--json").stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    ok(path, "init")
    return path


def test_init_makes_the_database_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "d.sqlite"
    first = ok(path, "init")
    assert path.exists() and str(path) in first.stdout
    ok(path, "note", "add", "kept")
    ok(path, "init")
    assert [n["title"] for n in data(path, "note", "list")] == ["kept"]


def test_default_database_is_in_the_data_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = invoke(None, "note", "add", "in the data folder", DURU_HOME=str(home))
    assert result.exit_code == 0, result.output
    with DeviceStore.open(home / "duru.sqlite", create=False) as store:
        assert [n["title"] for n in store.notes.list_recent()] == ["in the data folder"]


def test_note_lifecycle(db: Path) -> None:
    note = data(db, "note", "add", "Groceries", "--body", "milk, eggs", "-t", "home", "--pin")
    assert note["title"] == "Groceries" and note["is_pinned"] is True
    nid = note["id"]
    ok(db, "note", "add", "Other")
    listed = data(db, "note", "list")
    assert [n["title"] for n in listed] == ["Groceries", "Other"]  # pinned first
    assert "Groceries" in ok(db, "note", "list").stdout

    edited = data(db, "note", "edit", nid[:6], "--title", "Shopping", "--body", "-")
    assert edited["title"] == "Shopping"
    ok(db, "note", "edit", nid[:6], "--body", "-", stdin="from stdin\n")
    shown = data(db, "note", "show", nid[:8])
    assert shown["note"]["body"] == "from stdin\n" and shown["tags"] == ["home"]

    assert data(db, "note", "unpin", nid)["is_pinned"] is False
    assert data(db, "note", "pin", nid)["is_pinned"] is True
    assert data(db, "note", "rm", nid)["deleted"] is True
    assert [n["id"] for n in data(db, "note", "trash")] == [nid]
    assert [n["title"] for n in data(db, "note", "list")] == ["Other"]
    assert data(db, "note", "restore", nid)["deleted"] is False
    ok(db, "note", "rm", nid)
    assert data(db, "note", "purge", nid)["id"] == nid
    assert data(db, "note", "trash") == []
    with DeviceStore.open(db, create=False) as store:
        assert store.db.find("note", nid) is None


def test_note_list_pages_and_empty_trash(db: Path) -> None:
    for i in range(5):
        ok(db, "note", "add", f"n{i}")
    first = data(db, "note", "list", "--limit", "2")
    rest = data(db, "note", "list", "--limit", "10", "--offset", "2")
    assert len(first) == 2 and len(rest) == 3
    assert {n["title"] for n in first + rest} == {f"n{i}" for i in range(5)}
    for n in first:
        ok(db, "note", "rm", n["id"])
    assert data(db, "note", "trash", "--empty") == {"purged": 2}
    assert len(data(db, "note", "list")) == 3


def test_note_show_gathers_folder_tags_tasks_and_links(db: Path) -> None:
    top = data(db, "folder", "add", "Work")
    sub = data(db, "folder", "add", "Duru", "--parent", top["id"][:5])
    target = data(db, "note", "add", "Sync protocol")
    note = data(db, "note", "add", "Review", "-t", "design", "--folder", sub["id"][:6])
    with DeviceStore.open(db, create=False) as store:
        store.links.add(note["id"], "Sync protocol")
    task = data(db, "task", "add", note["id"][:6], "Write it up")
    data(db, "task", "add", note["id"][:6], "Ask Ana", "--parent", task["id"][:6])
    view = data(db, "note", "show", note["id"][:6])
    assert view["folder"]["path"] == ["Work", "Duru"]
    assert view["tags"] == ["design"]
    assert [(t["content"], t["depth"]) for t in view["tasks"]] == [
        ("Write it up", 0),
        ("Ask Ana", 1),
    ]
    assert [link["target_id"] for link in view["links"]] == [target["id"]]
    back = data(db, "note", "show", target["id"])["backlinks"]
    assert [b["source_title"] for b in back] == ["Review"]
    text = ok(db, "note", "show", note["id"][:6]).stdout
    assert "Work / Duru" in text and "Write it up" in text and "design" in text


def test_folder_commands(db: Path) -> None:
    work = data(db, "folder", "add", "Work")
    duru = data(db, "folder", "add", "Duru", "--parent", work["id"])
    home = data(db, "folder", "add", "Home")
    tree = data(db, "folder", "list")
    assert [(f["name"], f["depth"]) for f in tree] == [("Work", 0), ("Duru", 1), ("Home", 0)]
    assert tree[1]["path"] == ["Work", "Duru"]
    assert "  Duru" in ok(db, "folder", "list").stdout

    assert data(db, "folder", "rename", duru["id"][:5], "Duru Notes")["name"] == "Duru Notes"
    assert data(db, "folder", "move", duru["id"][:5], home["id"][:5])["parent_id"] == home["id"]
    assert data(db, "folder", "move", duru["id"][:5], "--top")["parent_id"] is None

    note = data(db, "note", "add", "Filed")
    filed = data(db, "folder", "file", note["id"][:6], duru["id"][:6])
    assert filed == {**filed, "note_id": note["id"], "folder_id": duru["id"]}
    ok(db, "folder", "move", duru["id"], work["id"])
    assert data(db, "folder", "rm", duru["id"]) == {"notes": 1, "folders": 0}
    assert data(db, "note", "show", note["id"])["folder"]["path"] == ["Work"]
    assert data(db, "folder", "rm", work["id"], "--notes-to", "trash") == {"notes": 1, "folders": 0}
    assert [n["id"] for n in data(db, "note", "trash")] == [note["id"]]


def test_tag_commands(db: Path) -> None:
    a = data(db, "note", "add", "A", "-t", "food")
    b = data(db, "note", "add", "B")
    assert data(db, "tag", "add", b["id"][:6], "food", "home")["tags"] == ["food", "home"]
    assert data(db, "tag", "list") == [{"tag": "food", "notes": 2}, {"tag": "home", "notes": 1}]
    assert data(db, "tag", "rename", "food", "groceries")["changed"] == 2
    assert data(db, "tag", "rm", a["id"], "groceries")["removed"] is True
    assert invoke(db, "tag", "rm", a["id"], "groceries").exit_code == 3  # no longer has it
    assert data(db, "tag", "list") == [
        {"tag": "groceries", "notes": 1},
        {"tag": "home", "notes": 1},
    ]
    assert "groceries" in ok(db, "tag", "list").stdout


def test_task_commands(db: Path) -> None:
    note = data(db, "note", "add", "Trip")
    late = data(db, "task", "add", note["id"][:5], "Pack", "--due", "2030-01-05")
    soon = data(
        db, "task", "add", note["id"][:5], "Book", "--due", "2030-01-02T09:30", "--priority", "high"
    )
    data(db, "task", "add", note["id"][:5], "Someday")
    sub = data(db, "task", "add", note["id"][:5], "Train", "--parent", soon["id"][:6])
    assert soon["priority"] == "high" and sub["parent_task_id"] == soon["id"]
    assert soon["due_date"] == epoch_ms(datetime(2030, 1, 2, 9, 30, tzinfo=UTC))

    open_now = [t["content"] for t in data(db, "task", "list")]
    assert open_now[:2] == ["Book", "Pack"]  # due soonest first, the undated after
    assert sorted(open_now[2:]) == ["Someday", "Train"]
    tree = data(db, "task", "list", "--note", note["id"][:5])
    assert [(t["content"], t["depth"]) for t in tree] == [
        ("Pack", 0),
        ("Book", 0),
        ("Train", 1),
        ("Someday", 0),
    ]

    done = data(db, "task", "done", late["id"][:6])
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert data(db, "task", "status", late["id"][:6], "in_progress")["completed_at"] is None
    assert data(db, "task", "due", late["id"][:6], "--clear")["due_date"] is None
    assert data(db, "task", "due", late["id"][:6], "2031-02-03")["due_date"] == epoch_ms(
        datetime(2031, 2, 3, tzinfo=UTC)
    )
    assert data(db, "task", "rm", soon["id"][:6]) == {"deleted": 2}
    assert [t["content"] for t in data(db, "task", "list")] == ["Pack", "Someday"]
    assert "Someday" in ok(db, "task", "list").stdout


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp()) * 1000


def test_search(db: Path) -> None:
    folder = data(db, "folder", "add", "Travel")
    lisbon = data(
        db,
        "note",
        "add",
        "Lisbon",
        "--body",
        "São Jorge castle, then the design review",
        "-t",
        "travel",
        "--folder",
        folder["id"][:6],
    )
    review = data(db, "note", "add", "Design review", "--body", "agenda", "--pin")
    data(db, "note", "add", "Designer notes", "-t", "travel")

    def ids(*args: str) -> list[str]:
        return [h["id"] for h in data(db, "search", *args)]

    assert set(ids("desig*")) == {lisbon["id"], review["id"], *ids("designer")}
    assert len(ids("desig*")) == 3
    assert ids('"design review"')[0] == review["id"]
    assert ids("sao") == [lisbon["id"]]
    assert ids("desig*", "--tag", "travel", "--limit", "1") in ([lisbon["id"]], ids("designer"))
    assert ids("desig*", "--folder", folder["id"][:6]) == [lisbon["id"]]
    assert ids("desig*", "--pinned") == [review["id"]]
    assert ids('"unclosed') == []
    hit = data(db, "search", "sao")[0]
    assert "[São]" in hit["snippet"] and set(hit) >= {"score", "title_marked", "updated_at"}
    assert "«São»" in ok(db, "search", "sao").stdout


def test_unicode_and_brackets_print_as_typed(db: Path) -> None:
    ok(db, "note", "add", "[[Crème brûlée]] [bold]x[/bold]")
    out = ok(db, "note", "list").stdout
    assert "[[Crème brûlée]] [bold]x[/bold]" in out
