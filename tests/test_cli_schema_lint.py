"""`duru schema check` and `duru migrate lint` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app
from duru.local import Database
from duru.remote.schema import apply_server_schema

CORPUS = Path(__file__).parent / "lint_corpus"
runner = CliRunner()


def test_lint_good_corpus_exits_zero() -> None:
    result = runner.invoke(app, ["migrate", "lint", str(CORPUS / "sqlite" / "good")])
    assert result.exit_code == 0, result.output


def test_lint_bad_corpus_fails_with_json_findings() -> None:
    result = runner.invoke(
        app, ["migrate", "lint", "--format", "json", str(CORPUS / "sqlite" / "bad")]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["has_errors"] is True
    rules = {f["rule"] for f in report["findings"]}
    assert {"DURU101", "DURU102", "DURU103", "DURU104"} <= rules


def test_lint_refuses_an_unknown_format() -> None:
    result = runner.invoke(app, ["migrate", "lint", "--format", "xml", str(CORPUS)])
    assert result.exit_code == 2
    assert "--format must be text, json, github, sarif" in result.output


def test_schema_check_needs_a_side() -> None:
    result = runner.invoke(app, ["schema", "check"], env={"DURU_DATABASE_URL": ""})
    assert result.exit_code == 2
    assert "give --local PATH" in result.output


def test_schema_check_of_compatible_databases_exits_zero(tmp_path: Path, pg_url: str) -> None:
    Database.open(tmp_path / "d.sqlite").close()
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        conn.commit()
    result = runner.invoke(
        app,
        ["schema", "check", "--local", str(tmp_path / "d.sqlite"), "--remote", pg_url, "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_schema_check_names_a_plaintext_column_and_fails(tmp_path: Path, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        conn.execute("ALTER TABLE notes ADD COLUMN body text")
        conn.commit()
    result = runner.invoke(app, ["schema", "check", "--remote", pg_url])
    assert result.exit_code == 1
    assert "notes.body" in result.output and "plaintext" in result.output
