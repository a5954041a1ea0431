"""`duru export` and `duru import`, and the installed `duru` console script in a real process."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from legacy_factory import make_legacy_db
from test_cli import data, invoke, ok
from test_cli_errors import one_line_error

from duru.local import DeviceStore, export_all
from duru.local.export import EXPORT_KEY, export_document
from duru.local.legacy import LEGACY_TABLES, import_legacy

DURU = Path(sys.executable).with_name("duru")


def sample_db(path: Path, notes: int = 5, body_words: int = 3) -> Path:
    with DeviceStore.open(path) as store:
        folder = store.folders.create("Top")
        for i in range(notes):
            note = store.notes.create(
                f"Nöte {i}", "wörd " * body_words, tags=["t"], folder_id=folder["id"]
            )
            store.tasks.create(note["id"], f"task {i}")
        store.db.quarantine("test", "local_notes", "k", "orphan", {"x": 1})
    return path


def test_export_to_stdout_is_the_full_backup(tmp_path: Path) -> None:
    db = sample_db(tmp_path / "d.sqlite")
    printed = json.loads(ok(db, "export").stdout)
    with DeviceStore.open(db, create=False) as store:
        assert printed == export_document(store.db)
    assert EXPORT_KEY in printed and len(printed["notes"]) == 5 and len(printed["quarantine"]) == 1
    assert json.loads(ok(db, "export", "--format", "json").stdout) == printed


def test_export_to_a_file_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    db = sample_db(tmp_path / "d.sqlite")
    out = tmp_path / "backups" / "b.json"
    out.parent.mkdir()
    out.write_text("the previous backup")
    result = ok(db, "export", "--out", str(out), "--force")
    assert str(out) in result.stdout
    with DeviceStore.open(db, create=False) as store:
        assert json.loads(out.read_text(encoding="utf-8")) == export_document(store.db)
    assert [p.name for p in out.parent.iterdir()] == ["b.json"]


def test_export_to_a_missing_folder_fails_in_one_line(tmp_path: Path) -> None:
    db = sample_db(tmp_path / "d.sqlite")
    one_line_error(invoke(db, "export", "--out", str(tmp_path / "no" / "b.json")), "No such file")


def _export_script(db: Path, out: Path, limit_kib: int | None = None) -> list[str]:
    command = f"exec {shlex.quote(str(DURU))} export --db {db} --out {out} --force"
    if limit_kib is not None:
        # A file-size limit fails the write as a full disk would; SIGXFSZ ignored so it is EFBIG.
        command = f"trap '' XFSZ; ulimit -f {limit_kib}; {command}"
    return ["bash", "-c", command]


def test_export_that_runs_out_of_space_keeps_the_old_backup(tmp_path: Path) -> None:
    db = sample_db(tmp_path / "d.sqlite", notes=200, body_words=400)
    out = tmp_path / "backups" / "b.json"
    out.parent.mkdir()
    out.write_text('{"old": true}')
    done = subprocess.run(
        _export_script(db, out, limit_kib=256), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["duru: File too large"], done.stderr
    assert out.read_text() == '{"old": true}'
    assert [p.name for p in out.parent.iterdir()] == ["b.json"]
    # The same export with room to spare is complete.
    finished = subprocess.run(_export_script(db, out), capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert len(json.loads(out.read_text(encoding="utf-8"))["notes"]) == 200


def test_a_killed_export_never_leaves_half_a_backup(tmp_path: Path) -> None:
    """Kill the export the moment its temporary file appears: mid-write, not before."""
    db = sample_db(tmp_path / "d.sqlite", notes=300, body_words=400)
    folder = tmp_path / "backups"
    folder.mkdir()
    out = folder / "b.json"
    out.write_text('{"old": true}')
    killed_mid_write = 0
    for _ in range(5):  # until one kill lands mid-write
        proc = subprocess.Popen(_export_script(db, out), start_new_session=True)
        while proc.poll() is None and not list(folder.glob(".b.json.*.partial")):
            time.sleep(0.0005)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        text = out.read_text(encoding="utf-8")
        if text == '{"old": true}':
            killed_mid_write += 1
        else:  # the rename won the race: then the backup is whole
            assert len(json.loads(text)["notes"]) == 300
            out.write_text('{"old": true}')
        # A kill cannot remove the hidden temporary file; it is never taken for the backup.
        for partial in folder.glob(".b.json.*.partial"):
            partial.unlink()
        if killed_mid_write:
            break
    assert killed_mid_write > 0


def test_import_prints_the_accounting_of_every_table(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.sqlite"
    make_legacy_db(legacy, seed=11, notes=30)
    report = data(tmp_path / "cli.sqlite", "import", str(legacy))
    reference = import_legacy(legacy, tmp_path / "library.sqlite").to_dict()
    assert list(report["tables"]) == [t.name for t in LEGACY_TABLES]
    for name, table in report["tables"].items():
        assert table["read"] == table["imported"] + table["merged"] + table["quarantined"]
        counts = ("read", "imported", "merged", "quarantined")
        assert {k: table[k] for k in counts} == {k: reference["tables"][name][k] for k in counts}
    with DeviceStore.open(tmp_path / "cli.sqlite", create=False) as store:
        exported = export_all(store.db)
    held = sum(len(rows) for table, rows in exported.items() if table != "quarantine")
    assert held == report["totals"]["imported"]
    assert len(exported["quarantine"]) == report["totals"]["quarantined"]

    text = ok(tmp_path / "again.sqlite", "import", str(legacy)).stdout
    assert "quarantined" in text and "local_notes" in text and "imported" in text


def test_import_refuses_an_existing_target_and_a_missing_source(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.sqlite"
    make_legacy_db(legacy, seed=12, notes=5)
    target = sample_db(tmp_path / "existing.sqlite")
    before = target.read_bytes()
    one_line_error(invoke(target, "import", str(legacy)), "already exists")
    assert target.read_bytes() == before
    one_line_error(invoke(tmp_path / "new.sqlite", "import", str(tmp_path / "none")), "no legacy")
    assert not (tmp_path / "new.sqlite").exists()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(4096))
    one_line_error(invoke(tmp_path / "new.sqlite", "import", str(garbage)))
    assert not (tmp_path / "new.sqlite").exists()


@pytest.mark.parametrize("target_flag", [True, False])
def test_import_target_from_flag_or_environment(tmp_path: Path, target_flag: bool) -> None:
    legacy = tmp_path / "legacy.sqlite"
    make_legacy_db(legacy, seed=13, notes=5)
    target = tmp_path / "sub" / "t.sqlite"
    if target_flag:
        result = invoke(None, "import", str(legacy), "--db", str(target))
    else:
        result = invoke(target, "import", str(legacy))
    assert result.exit_code == 0, result.output
    assert data(target, "note", "list")


def test_the_console_script_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "DURU_DB": str(tmp_path / "p.sqlite"), "DURU_HOME": str(tmp_path)}

    def duru(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DURU), *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert duru("init").returncode == 0
    made = duru("note", "add", "São Paulo trip", "--json")
    assert made.returncode == 0, made.stderr
    note = json.loads(made.stdout)
    hits = json.loads(duru("search", "sao", "--json").stdout)
    assert [h["id"] for h in hits] == [note["id"]]
    shown = duru("note", "show", note["id"][:6])
    assert "São Paulo trip" in shown.stdout
    failed = duru("note", "show", "ffffffff")
    assert failed.returncode == 3
    assert failed.stderr.splitlines() == ["duru: no note with an id starting 'ffffffff'"]
    assert "Traceback" not in failed.stderr
    helped = duru("--help")
    assert helped.returncode == 0 and "note" in helped.stdout
