"""Bad input to `duru migrate lint`: a clear finding and a failing exit, never a traceback.

Each file sits alone in its own folder, since a file is linted with its folder's
other files as context.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app

runner = CliRunner()


def _lint(tmp_path: Path, name: str, content: bytes, *flags: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(app, ["migrate", "lint", "--format", "json", *flags, str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def _messages(report: dict) -> list[tuple[str, int, str]]:  # type: ignore[type-arg]
    return [(f["rule"], f["line"], f["message"]) for f in report["findings"]]


@pytest.mark.parametrize(
    ("name", "content", "line", "says"),
    [
        ("binary.sql", bytes(range(256)) * 16, 1, "not UTF-8 text (byte 128 is invalid)"),
        ("latin1.sql", "CREATE TABLE café (id int);\n".encode("latin-1"), 1, "not UTF-8 text"),
        ("comment.sql", b"SELECT 1;\n/* never closed\nDROP TABLE notes;\n", 2, "unterminated /*"),
        ("unclosed.py", b'x = 1\nsql = "CREATE TABLE a (id int)\ny = 2\n', 2, "unterminated"),
        ("unclosed.dart", b"f() => db.execute('CREATE TABLE t (${x');\n", 1, "missing }"),
        ("unclosed.ts", b"const s = `CREATE TABLE t (${ ` ;\n", 1, "missing }"),
    ],
)
def test_unreadable_input_is_a_finding(
    tmp_path: Path, name: str, content: bytes, line: int, says: str
) -> None:
    code, report = _lint(tmp_path, name, content, "--dialect", "postgres")
    assert code == 1
    assert any(r == "DURU001" and at == line and says in m for r, at, m in _messages(report)), (
        _messages(report)
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_nul_byte_cannot_hide_a_statement(tmp_path: Path, dialect: str) -> None:
    code, report = _lint(
        tmp_path, "m.sql", b"SELECT 1;\x00 DROP TABLE notes;\n", "--dialect", dialect
    )
    assert code == 1
    assert _messages(report) == [
        ("DURU001", 1, f"{dialect} parser: a NUL character in the statement")
    ]


@pytest.mark.parametrize("quote", ["'", "$$"])
def test_unterminated_sql_string_is_a_parse_error(tmp_path: Path, quote: str) -> None:
    sql = f"UPDATE notes SET title = {quote}open;\nDROP TABLE notes;\n".encode()
    code, report = _lint(tmp_path, "m.sql", sql, "--dialect", "postgres")
    assert code == 1
    assert [rule for rule, _, _ in _messages(report)] == ["DURU001"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_cjk_and_emoji_identifiers_are_linted_and_shown_as_written(
    tmp_path: Path, dialect: str
) -> None:
    sql = (
        "SET lock_timeout = '5s';\nSET statement_timeout = '5s';\n"
        'ALTER TABLE "笔记" ADD COLUMN "🎉" text NOT NULL;\n'
        "DROP TABLE 메모;\n"
    ).encode()
    if dialect == "sqlite":
        sql = sql.split(b"\n", 2)[2]
    code, report = _lint(tmp_path, "m.sql", sql, "--dialect", dialect)
    assert code == 1
    found = {(rule, message) for rule, _, message in _messages(report)}
    assert (
        "DURU206",
        "ADD COLUMN 🎉 NOT NULL without DEFAULT fails on a 笔记 that has rows",
    ) in found
    assert any(rule == "DURU104" and "DROP TABLE 메모" in message for rule, message in found)


def test_five_megabyte_file_is_linted(tmp_path: Path) -> None:
    head = "SET lock_timeout = '5s';\nSET statement_timeout = '30s';\n"
    rows = ",\n".join(
        f"('{n:08d}', 'note {n} 笔记 🎉', 'body of note number {n}')" for n in range(75_000)
    )
    body = f"INSERT INTO notes (id, title, body) VALUES\n{rows};\nDROP TABLE notes_old;\n"
    content = (head + body).encode()
    assert len(content) > 5_000_000
    code, report = _lint(tmp_path, "big.sql", content, "--dialect", "postgres")
    assert code == 1
    assert [(rule, line) for rule, line, _ in _messages(report)] == [("DURU104", 75_004)]
