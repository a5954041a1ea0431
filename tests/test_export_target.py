"""`duru export --out`: a backup never destroys what it lands on (issue 11, item 8).

The device database (and its -wal/-shm, through any link), a symbolic link, a
folder and anything that is not a regular file are refused; an existing file
needs --force, or a yes at a terminal; `--out -` is standard output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import invoke, ok
from test_cli_errors import one_line_error

from duru.errors import UsageError
from duru.local import DeviceStore, export_all, write_export

DURU = Path(sys.executable).with_name("duru")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    with DeviceStore.open(path) as store:
        store.notes.create("東京 会議 🎉", "中文 body", tags=["旅行"])
    return path


def files(folder: Path) -> dict[str, bytes]:
    """The bytes of every file in ``folder`` (the -shm is SQLite's scratch: every read moves it)."""
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and not p.is_symlink() and not p.name.endswith("-shm")
    }


def test_the_database_itself_is_refused_by_any_route(db: Path, tmp_path: Path) -> None:
    (tmp_path / "here").symlink_to(tmp_path)
    os.link(db, tmp_path / "hard.json")
    with DeviceStore.open(db, create=False) as store:
        store.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
        store.notes.create("only in the wal")
        before = files(tmp_path)
        for out in (
            db,
            Path(f"{db}-wal"),
            Path(f"{db}-shm"),
            tmp_path / "here" / db.name,
            tmp_path / "hard.json",
        ):
            one_line_error(invoke(db, "export", "--out", str(out), "--force"), "device database")
            with pytest.raises(UsageError, match="device database"):
                write_export(store.db, out)
        assert files(tmp_path) == before
    with DeviceStore.open(db, create=False) as store:
        assert len(export_all(store.db)["notes"]) == 2


@pytest.mark.parametrize("kind", ["symlink", "folder", "fifo", "device"])
def test_what_is_not_a_regular_file_is_never_replaced(db: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    out = {"symlink": tmp_path / "link.json", "folder": tmp_path / "folder"}.get(
        kind, tmp_path / "fifo"
    )
    if kind == "symlink":
        out.symlink_to(target)
    elif kind == "folder":
        out.mkdir()
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out = Path("/dev/null")
    words = {"symlink": "symbolic link", "folder": "folder"}.get(kind, "not a regular file")
    one_line_error(invoke(db, "export", "--out", str(out), "--force"), words)
    assert target.read_text() == "precious"
    if kind == "symlink":
        assert out.is_symlink() and out.resolve() == target
    if kind == "device":
        assert Path("/dev/null").is_char_device()
    assert not list(tmp_path.glob(".*.partial"))


def test_an_existing_file_needs_force_without_a_terminal(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "backup.json"
    out.write_text("the previous backup")
    line = one_line_error(invoke(db, "export", "--out", str(out)), "already exists", "--force")
    assert str(out) in line
    assert out.read_text() == "the previous backup"
    # The installed command with stdin from /dev/null (a script): the same refusal.
    done = subprocess.run(
        [str(DURU), "export", "--db", str(db), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.splitlines() == [f"duru: {line[6:]}"]
    ok(db, "export", "--out", str(out), "--force")
    with DeviceStore.open(db, create=False) as store:
        assert json.loads(out.read_text(encoding="utf-8"))["notes"] == export_all(store.db)["notes"]


def test_a_terminal_is_asked_before_a_file_is_replaced(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "backup.json"
    for answer, replaced in (("n", False), ("y", True)):
        out.write_text("the previous backup")
        primary, secondary = os.openpty()
        os.write(primary, f"{answer}\n".encode())  # typed ahead: the terminal holds it
        try:
            done = subprocess.run(
                [str(DURU), "export", "--db", str(db), "--out", str(out)],
                stdin=secondary,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            os.close(primary)
            os.close(secondary)
        assert "Replace it?" in done.stderr
        assert (done.returncode == 0) is replaced, done.stderr
        assert (out.read_text() != "the previous backup") is replaced


def test_dash_is_standard_output(db: Path, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    printed = json.loads(ok(db, "export", "--out", "-").stdout)
    assert not Path("-").exists()
    with DeviceStore.open(db, create=False) as store:
        assert printed["notes"] == export_all(store.db)["notes"]
    assert printed["notes"][0]["title"] == "東京 会議 🎉"


def test_a_file_made_while_exporting_is_not_replaced(db: Path, tmp_path: Path) -> None:
    """Without replace, the final step is a link that fails on an existing name."""
    out = tmp_path / "backup.json"
    with DeviceStore.open(db, create=False) as store:
        write_export(store.db, out, replace=False)
        first = out.read_text(encoding="utf-8")
        store.notes.create("later")
        with pytest.raises(UsageError, match="already exists"):
            write_export(store.db, out, replace=False)
    assert out.read_text(encoding="utf-8") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.json", "device.sqlite"]
