"""`duru upload` and `duru download` from the command line, against a real PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app
from duru.local import DeviceStore, export_json

runner = CliRunner()


def _device(path: Path) -> None:
    with DeviceStore.open(path) as store:
        folder = store.folders.create("Work")
        note = store.notes.create("Design review", "the agenda", folder_id=folder["id"], tags=["w"])
        store.tasks.create(note["id"], "write it up", due_date=1_700_000_000_000)


def test_upload_then_download_reproduces_the_export(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    env = {"DURU_PASSPHRASE": "correct horse battery staple"}
    up = runner.invoke(
        app,
        ["upload", "--db", str(tmp_path / "a.sqlite"), "--user", "ana", "--server", pg_url],
        env=env,
    )
    assert up.exit_code == 0, up.output
    assert "upload of ana" in up.output
    down = runner.invoke(
        app,
        ["download", "--db", str(tmp_path / "b.sqlite"), "--user", "ana"]
        + ["--server", pg_url, "--json"],
        env=env,
    )
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout)["rows"] >= 4
    with DeviceStore.open(tmp_path / "a.sqlite") as a, DeviceStore.open(tmp_path / "b.sqlite") as b:
        assert export_json(a.db) == export_json(b.db)


def test_download_with_a_wrong_passphrase_is_one_line(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    args = ["--user", "ana", "--server", pg_url]
    up = runner.invoke(
        app, ["upload", "--db", str(tmp_path / "a.sqlite"), *args], env={"DURU_PASSPHRASE": "one"}
    )
    assert up.exit_code == 0, up.output
    down = runner.invoke(
        app, ["download", "--db", str(tmp_path / "b.sqlite"), *args], env={"DURU_PASSPHRASE": "two"}
    )
    assert down.exit_code == 1
    lines = [line for line in down.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "passphrase" in lines[0], down.output
    assert not (tmp_path / "b.sqlite").exists() or (tmp_path / "b.sqlite").stat().st_size == 0


def test_upload_without_a_passphrase_says_how_to_give_one(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    result = runner.invoke(
        app,
        ["upload", "--db", str(tmp_path / "a.sqlite"), "--server", pg_url],
        env={"DURU_PASSPHRASE": None},
    )
    assert result.exit_code == 2
    assert "DURU_PASSPHRASE" in result.output


def _accounts(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('accounts')").fetchone() == (None,):
            return []
        return [str(r[0]) for r in conn.execute("SELECT name FROM accounts")]


def test_a_blank_user_or_passphrase_is_refused_before_the_server(
    tmp_path: Path, pg_url: str
) -> None:
    _device(tmp_path / "a.sqlite")
    up = ["upload", "--db", str(tmp_path / "a.sqlite"), "--server", pg_url]
    for user in ("", "   "):
        result = runner.invoke(app, [*up, "--user", user], env={"DURU_PASSPHRASE": "fine one"})
        assert result.exit_code != 0 and "--user is empty" in result.output, result.output
    result = runner.invoke(app, up, env={"DURU_PASSPHRASE": "fine one", "DURU_USER": ""})
    assert result.exit_code != 0 and "$DURU_USER is empty" in result.output, result.output
    for secret in ("", " ", "\t \n"):
        result = runner.invoke(app, [*up, "--user", "ana"], env={"DURU_PASSPHRASE": secret})
        assert result.exit_code != 0 and "passphrase is empty" in result.output, result.output
    assert _accounts(pg_url) == []  # no account was made under the login name, or at all


def _tamper_one_title(inspect_url: str) -> None:
    """A hostile server flips a byte; its operator is not bound by row level security."""
    with psycopg.connect(inspect_url) as conn:
        conn.execute(
            "UPDATE notes SET title_enc = overlay(title_enc placing '\\xff'::bytea from 40)"
            " WHERE id = (SELECT id FROM notes ORDER BY id LIMIT 1)"
        )


def test_a_failed_download_leaves_an_existing_target_byte_for_byte(
    tmp_path: Path, pg_url: str, pg_inspect_url: str
) -> None:
    _device(tmp_path / "a.sqlite")
    env = {"DURU_PASSPHRASE": "correct horse battery staple"}
    args = ["--user", "ana", "--server", pg_url]
    up = runner.invoke(app, ["upload", "--db", str(tmp_path / "a.sqlite"), *args], env=env)
    assert up.exit_code == 0, up.output
    _tamper_one_title(pg_inspect_url)  # the download fails part way, after the account opened
    zero = tmp_path / "zero.sqlite"
    zero.touch()
    empty = tmp_path / "empty.sqlite"
    with DeviceStore.open(empty):
        pass
    for target in (zero, empty):
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        down = runner.invoke(app, ["download", "--db", str(target), *args], env=env)
        assert down.exit_code != 0 and "title" in down.output, down.output
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert after == before, target  # same files, same bytes: no staging file left either


def _named_commands(message: str) -> list[list[str]]:
    """The `duru ...` commands a message tells a person to run (words before any option)."""
    found = re.findall(r"`duru ([a-z][a-z -]*?)(?: --[^`]*)?`", message)
    return [words.split() for words in found]


def _exists(words: list[str]) -> bool:
    return runner.invoke(app, [*words, "--help"]).exit_code == 0


def test_error_messages_name_only_commands_that_exist(tmp_path: Path, pg_url: str) -> None:
    _device(tmp_path / "a.sqlite")
    env = {"DURU_PASSPHRASE": "correct horse battery staple"}
    args = ["--user", "ana", "--server", pg_url]
    messages = [runner.invoke(app, ["migrate", "status", "--server", pg_url]).output]
    assert runner.invoke(app, ["upload", "--db", str(tmp_path / "a.sqlite"), *args], env=env)
    messages.append(
        runner.invoke(app, ["download", "--db", str(tmp_path / "a.sqlite"), *args], env=env).output
    )
    for message in messages:
        assert message.startswith("duru: ") and "apply_server_schema" not in message, message
        assert "use sync" not in message, message
        named = _named_commands(message)
        assert named and all(_exists(words) for words in named), (message, named)
