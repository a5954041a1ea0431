"""Errors: one clear `duru: ...` line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from test_cli import data, invoke, ok
from typer.testing import Result

from duru.errors import NotFound, UsageError
from duru.local import DeviceStore
from duru.model import NOTE


def one_line_error(result: Result, *words: str) -> str:
    """The single error line of a failed command, checked for ``words``."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("duru: "), result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    ok(path, "init")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("note", "list"),
        ("note", "show", "abcd"),
        ("search", "x"),
        ("folder", "list"),
        ("tag", "list"),
        ("task", "list"),
        ("export",),
    ],
)
def test_missing_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "absent.sqlite"
    line = one_line_error(invoke(missing, *args), "no device database", "duru init")
    assert str(missing) in line
    assert not missing.exists()  # only init, note add, demo and import make one


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(os.urandom(8192))
    one_line_error(invoke(path, "note", "list"), "not an SQLite database")
    one_line_error(invoke(path, "note", "add", "x"), "not an SQLite database")


def test_garbage_after_a_valid_header(tmp_path: Path) -> None:
    path = tmp_path / "header.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    one_line_error(invoke(path, "note", "list"), "not a readable SQLite database")


def test_damaged_page_found_by_a_read(tmp_path: Path) -> None:
    """Opening passes (header and schema are fine); the damage shows when notes are read."""
    path = tmp_path / "damaged.sqlite"
    with DeviceStore.open(path) as store:
        for i in range(200):
            store.notes.create(f"note {i}", "words " * 300)
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(size - 40 * 4096)
        fh.write(os.urandom(40 * 4096))
    for args in (("note", "list", "--limit", "500"), ("search", "words"), ("export",)):
        one_line_error(invoke(path, *args), "damaged", "malformed")


def test_an_sqlite_file_that_is_not_a_device_database(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    one_line_error(invoke(path, "note", "list"), "not a duru device database")


def test_unknown_and_short_ids(db: Path) -> None:
    one_line_error(invoke(db, "note", "show", "0123abcd"), "no note", "0123abcd")
    one_line_error(invoke(db, "note", "rm", "zzzz"), "no note")
    one_line_error(invoke(db, "note", "show", "abc"), "too short")
    one_line_error(invoke(db, "task", "done", "ffffffff"), "no task")
    one_line_error(invoke(db, "folder", "rename", "ffffffff", "x"), "no folder")
    note = data(db, "note", "add", "n")
    one_line_error(invoke(db, "folder", "file", note["id"], "ffff0000"), "no folder")
    assert invoke(db, "note", "show", "0123abcd").exit_code == 3  # not found


def test_ambiguous_prefix(db: Path) -> None:
    with DeviceStore.open(db, create=False) as store:
        for tail in ("1111", "2222"):
            store.db.insert(NOTE, {"id": f"abcd0000-0000-4000-8000-00000000{tail}", "title": tail})
    line = one_line_error(invoke(db, "note", "show", "abcd"), "ambiguous", "more characters")
    assert "abcd0000-0000-4000-8000-000000001111" in line
    assert (
        data(db, "note", "show", "abcd0000-0000-4000-8000-00000000222")["note"]["title"] == "2222"
    )


def test_bad_arguments(db: Path) -> None:
    note = data(db, "note", "add", "n")
    task = data(db, "task", "add", note["id"], "t")
    one_line_error(invoke(db, "task", "status", task["id"], "bogus"), "task_status", "completed")
    one_line_error(invoke(db, "task", "add", note["id"], "x", "--priority", "huge"), "priority")
    one_line_error(invoke(db, "task", "add", note["id"], "x", "--due", "tomorrow"), "not a date")
    one_line_error(invoke(db, "task", "due", task["id"]), "--clear")
    one_line_error(invoke(db, "folder", "add", "   "), "blank")
    one_line_error(invoke(db, "folder", "move", "abcd"), "--top")
    folder = data(db, "folder", "add", "f")
    one_line_error(invoke(db, "folder", "rm", folder["id"], "--notes-to", "nowhere"), "notes_to")
    one_line_error(invoke(db, "folder", "move", folder["id"], folder["id"]), "cycle")
    one_line_error(invoke(db, "tag", "add", note["id"], " "), "empty")
    one_line_error(invoke(db, "note", "edit", note["id"]), "nothing to change")
    one_line_error(invoke(db, "note", "list", "--limit", "0"), "limit")
    one_line_error(invoke(db, "search", "x", "--limit", "-1"), "limit")
    one_line_error(invoke(db, "export", "--format", "xml"), "xml")
    one_line_error(invoke(db, "note", "purge", note["id"]), "not in the trash")
    assert invoke(db, "task", "status", task["id"], "bogus").exit_code == 2  # usage


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unclosed', "double quote is not closed"),
        ("design AND", "ends too soon"),
        ("*x", "cannot start with"),
        ("design )", "syntax error"),
        ("nosuch:word", "not a searchable field"),
    ],
)
def test_malformed_search(db: Path, query: str, reason: str) -> None:
    ok(db, "note", "add", "design review")
    one_line_error(invoke(db, "search", "--advanced", query), "cannot search", reason)


def test_errors_leave_the_database_as_it_was(db: Path) -> None:
    note = data(db, "note", "add", "n", "-t", "a")
    before = ok(db, "export").stdout
    invoke(db, "tag", "add", note["id"], "b", " ")  # the blank tag fails after "b"
    invoke(db, "task", "add", note["id"], "x", "--priority", "huge")
    assert ok(db, "export").stdout == before


def test_resolve_prefix_in_the_library(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "d.sqlite") as store:
        note = store.notes.create("n")
        key = note["id"]
        assert store.db.resolve_prefix("note", key) == key
        assert store.db.resolve_prefix("notes", key[:4].upper()) == key
        assert store.db.resolve_prefix(NOTE, f" {key[:9]} ") == key
        with pytest.raises(UsageError, match="too short"):
            store.db.resolve_prefix(NOTE, key[:3])
        with pytest.raises(NotFound):
            store.db.resolve_prefix(NOTE, "xyz!")
        with pytest.raises(NotFound):
            store.db.resolve_prefix("task", key)
        traced: list[str] = []
        store.db.conn.set_trace_callback(traced.append)
        store.db.resolve_prefix(NOTE, key[:6])
        store.db.conn.set_trace_callback(None)
        plan = store.db.conn.execute("EXPLAIN QUERY PLAN " + traced[0]).fetchall()
        assert "USING COVERING INDEX" in plan[0][3], plan
