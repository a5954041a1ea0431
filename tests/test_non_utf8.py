"""Bytes that are not UTF-8 (issue 11, item 14): a clear error, never a traceback.

On POSIX, arguments (and, in UTF-8 mode, standard input) reach Python with such
bytes as lone surrogates, which SQLite cannot store: the API raised a bare
UnicodeEncodeError and the CLI printed its traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from duru.errors import InvalidValue
from duru.local import DeviceStore

DURU = os.fsencode(Path(sys.executable).with_name("duru"))
BAD = "caf\udce9"  # b"caf\xe9": Latin-1, not UTF-8


def duru(
    db: Path, *args: bytes, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [DURU, *args, b"--db", os.fsencode(db)],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, **env},
    )


def one_line(done: subprocess.CompletedProcess[bytes], *words: str) -> None:
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert b"Traceback" not in done.stderr and len(err.splitlines()) == 1, err
    assert err.startswith("duru: ") and all(w in err for w in words), err


def test_the_api_says_which_field_holds_the_bytes(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "d.sqlite") as store:
        with pytest.raises(InvalidValue, match="title.*not UTF-8"):
            store.notes.create(BAD)
        note = store.notes.create("ok", "東京 🎉")
        with pytest.raises(InvalidValue, match="not UTF-8"):
            store.tags.add(note["id"], BAD)
        with pytest.raises(InvalidValue, match="not UTF-8"):
            store.templates.create("t", tags=[BAD])
        with pytest.raises(InvalidValue, match="body.*not UTF-8"):
            store.notes.edit(note["id"], body=BAD)
        assert store.notes.get(note["id"])["body"] == "東京 🎉"
        assert store.notes.count() == 1


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_the_cli_refuses_them_in_one_line(tmp_path: Path, locale: str) -> None:
    db = tmp_path / "d.sqlite"
    with DeviceStore.open(db) as store:
        note = store.notes.create("ok", "body")
    one_line(duru(db, b"note", b"add", b"caf\xe9", LC_ALL=locale), "title", "not UTF-8")
    one_line(duru(db, b"note", b"add", b"t", b"--body", b"x\xffy", LC_ALL=locale), "not UTF-8")
    piped = duru(
        db, b"note", b"add", b"t", b"--body", b"-", stdin=b"caf\xe9 \xf0\x9f", LC_ALL=locale
    )
    one_line(piped, "standard input is not UTF-8", "0xe9", "offset 3")
    tag = duru(db, b"tag", b"rm", note["id"].encode(), b"caf\xe9", LC_ALL=locale)
    one_line(tag, "not UTF-8", "e9")
    fine = duru(db, b"note", b"add", "東京 🎉".encode(), b"--body", b"-", stdin="会議 ✓".encode())
    assert fine.returncode == 0, fine.stderr
    with DeviceStore.open(db, create=False) as store:
        assert sorted(n["title"] for n in store.notes.list_recent()) == ["ok", "東京 🎉"]


def test_a_database_path_that_is_not_utf8_works(tmp_path: Path) -> None:
    db = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.sqlite"))
    assert duru(db, b"note", b"add", b"x").returncode == 0
    assert db.exists()
