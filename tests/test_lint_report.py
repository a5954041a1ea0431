"""The linter's public face: lint_paths, the report (JSON and text), suppressions, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import duru.migrate.lint as lint
from duru.errors import LintFailed, NotFound, UsageError
from duru.migrate.lint import RULES, Finding, LintReport, lint_paths, lint_source

FINDING_KEYS = {
    "column",
    "end_line",
    "end_column",
    "rule",
    "name",
    "severity",
    "file",
    "line",
    "statement",
    "message",
    "why",
    "fix",
    "dialect",
    "suppressed",
    "suppression_reason",
}


def _lint(text: str, name: str = "m.sql", dialect: str | None = "sqlite") -> LintReport:
    return lint_source(text, Path(name), dialect=dialect)  # type: ignore[arg-type]


def _active(report: LintReport) -> list[tuple[str, int]]:
    return [(finding.rule, finding.line) for finding in report.active]


def test_exported_names() -> None:
    assert lint.__all__ == sorted(lint.__all__)
    assert set(lint.__all__) == {
        "RULES",
        "RULES_BY_ID",
        "FileSummary",
        "Finding",
        "LintReport",
        "Rule",
        "collect_files",
        "lint_paths",
        "lint_source",
    }


def test_rules_are_documented() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert rule.id.startswith("DURU") and len(rule.id) == 7
        assert rule.severity in ("error", "warning")
        assert len(rule.why) > 40 and len(rule.fix) > 30
        assert rule.dialects <= {"sqlite", "postgres"}


# JSON -----------------------------------------------------------------------------------


def test_json_shape(tmp_path: Path) -> None:
    path = tmp_path / "012.sql"
    path.write_text(
        "INSERT OR IGNORE INTO a (x) SELECT x FROM b;\n"
        "DROP TABLE c; -- duru: allow DURU104 because c is a cache rebuilt on start\n"
        "CREAT TABLE d (x);\n"
    )
    report = lint_paths([path], dialect="sqlite")
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"version", "has_errors", "summary", "files", "findings"}
    assert data["version"] == 1 and data["has_errors"] is True
    assert data["summary"] == {
        "files": 1,
        "statements": 3,
        "errors": 2,
        "warnings": 0,
        "suppressed": 1,
    }
    assert data["files"] == [
        {
            "path": str(path),
            "dialect": "sqlite",
            "dialect_reason": "flag",
            "statements": 3,
            "not_understood": 0,
            "runtime_built": 0,
            "context_files": 0,
        }
    ]
    assert all(set(finding) == FINDING_KEYS for finding in data["findings"])
    by_rule = {finding["rule"]: finding for finding in data["findings"]}
    assert by_rule["DURU101"] == {
        "rule": "DURU101",
        "name": "insert-or-ignore-copy",
        "severity": "error",
        "file": str(path),
        "line": 1,
        "column": 1,
        "end_line": 1,
        "end_column": 43,
        "statement": "INSERT OR IGNORE INTO a (x) SELECT x FROM b",
        "message": by_rule["DURU101"]["message"],
        "why": RULES[2].why,
        "fix": RULES[2].fix,
        "dialect": "sqlite",
        "suppressed": False,
        "suppression_reason": None,
    }
    assert by_rule["DURU104"]["suppressed"] is True
    assert by_rule["DURU104"]["suppression_reason"] == "c is a cache rebuilt on start"
    assert by_rule["DURU001"]["severity"] == "error"
    assert by_rule["DURU001"]["line"] == 3


def test_statement_whitespace_is_collapsed() -> None:
    report = _lint("DROP\n   TABLE\tnotes ;")
    assert report.active[0].statement == "DROP TABLE notes"


# Text -----------------------------------------------------------------------------------


def test_text_output() -> None:
    sql = (
        "DROP TABLE notes;\n-- duru: allow DURU104 because rebuilt from the server\nDROP TABLE c;\n"
    )
    report = _lint(sql, name="migrations/012.sql")
    text = report.render_text()
    lines = text.splitlines()
    assert lines[0] == "migrations/012.sql:1:1: DURU104 error drop-without-backup"
    assert lines[1] == "    DROP TABLE notes"
    assert lines[2].startswith("    DROP TABLE notes destroys its rows")
    assert lines[4] == "DURU104 drop-without-backup"
    assert lines[5].startswith("    why: ") and lines[6].startswith("    fix: ")
    assert "migrations/012.sql:3: DURU104 suppressed because rebuilt from the server" in lines
    assert lines[-1] == "1 error(s), 0 warning(s), 1 suppressed in 1 file(s) (2 statement(s))"


def test_text_output_shortens_long_statements() -> None:
    columns = ", ".join(f"column_{n}" for n in range(40))
    report = _lint(f"INSERT OR IGNORE INTO a ({columns}) SELECT {columns} FROM b;")
    statement_line = report.render_text().splitlines()[1]
    assert len(statement_line) <= 104 and statement_line.endswith("...")


def test_clean_report() -> None:
    report = _lint("CREATE TABLE a (x);")
    assert not report.has_errors
    report.raise_for_errors()
    assert (
        report.render_text() == "read as sqlite (as told): 1 file(s)\n\n"
        "0 error(s), 0 warning(s), 0 suppressed in 1 file(s) (1 statement(s))\n"
    )


def test_raise_for_errors() -> None:
    with pytest.raises(LintFailed, match="1 error"):
        _lint("DROP TABLE a;").raise_for_errors()


def test_warnings_alone_do_not_fail() -> None:
    report = _lint("-- duru: allow DURU104\nCREATE TABLE a (x);")
    assert [f.severity for f in report.active] == ["warning"] and not report.has_errors


# Suppressions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE a; -- duru: allow DURU104 because derived data\n",
        "-- duru: allow DURU104 because derived data\nDROP TABLE a;\n",
        "/* duru: allow drop-without-backup because derived data */ DROP TABLE a;\n",
        "-- duru: allow DURU101, DURU104 because derived data\nDROP TABLE a;\n",
        "-- DUru: Allow duru104 because derived data\nDROP TABLE a;\n",
    ],
)
def test_sql_suppressions(sql: str) -> None:
    report = _lint(sql)
    assert report.active == []
    (finding,) = report.findings
    assert finding.suppressed and finding.suppression_reason == "derived data"


def test_suppression_does_not_reach_other_statements_or_rules() -> None:
    sql = (
        "-- duru: allow DURU104 because derived data\n"
        "\n"
        "DROP TABLE a;\n"
        "DROP TABLE b; -- duru: allow DURU101 because wrong rule\n"
        "-- duru: allow DURU104 because only the next statement\n"
        "DROP TABLE c;\n"
        "DROP TABLE d;\n"
    )
    assert _active(_lint(sql)) == [("DURU104", 3), ("DURU104", 4), ("DURU104", 7)]


def test_trailing_suppression_covers_a_multi_line_statement() -> None:
    sql = "INSERT OR IGNORE INTO a (x)\nSELECT x FROM b; -- duru: allow DURU101 because dedupe\n"
    assert _lint(sql).active == []


def test_suppression_without_reason_is_a_finding_and_suppresses_nothing() -> None:
    report = _lint("DROP TABLE a; -- duru: allow DURU104\n")
    assert _active(report) == [("DURU002", 1), ("DURU104", 1)]
    problem = report.active[0]
    assert problem.statement == "duru: allow DURU104" and "no reason" in problem.message


def test_suppression_of_unknown_rule_is_a_finding() -> None:
    report = _lint("DROP TABLE a; -- duru: allow DURU104, DURU999 because derived data\n")
    assert _active(report) == [("DURU002", 1)]
    assert "unknown rule DURU999" in report.active[0].message
    assert [f.rule for f in report.findings if f.suppressed] == ["DURU104"]


def test_python_host_comment_suppresses_the_string_below() -> None:
    source = (
        "def up(conn):\n"
        "    # duru: allow DURU104 because the cache is rebuilt at start-up\n"
        '    conn.executescript("""\n'
        "        DROP TABLE search_cache;\n"
        "        DROP TABLE search_cache_terms;\n"
        '    """)\n'
        "    conn.execute('DROP TABLE notes')  # duru: allow DURU104 because backed up by caller\n"
        "    conn.execute('DROP TABLE folders')\n"
    )
    report = _lint(source, name="upgrade.py")
    assert _active(report) == [("DURU104", 8)]
    assert [f.line for f in report.findings if f.suppressed] == [4, 5, 7]


def test_sql_comment_inside_a_host_string_suppresses() -> None:
    source = (
        "await db.customStatement('''\n"
        "  -- duru: allow DURU104 because the cache is derived\n"
        "  DROP TABLE search_cache;\n"
        "  DROP TABLE notes;\n"
        "''');\n"
        "// duru: allow DURU104\n"
        "await db.customStatement('DROP TABLE folders');\n"
    )
    report = _lint(source, name="m.dart")
    assert _active(report) == [("DURU104", 4), ("DURU002", 6), ("DURU104", 7)]


# Line numbers and parse errors ---------------------------------------------------------------


def test_lines_in_host_strings_with_escapes(tmp_path: Path) -> None:
    source = (
        "const a = 'x';\n"
        'const sql = "CREATE TABLE t (x);\\nDROP TABLE u;";\n'
        "const more = `\n"
        "\n"
        "  DROP TABLE v;\n"
        "`;\n"
    )
    report = _lint(source, name="m.ts")
    assert _active(report) == [("DURU104", 2), ("DURU104", 5)]


def test_postgres_parse_error_is_an_error() -> None:
    # An unreadable migration must fail CI (issue 12): it was a warning, exit status 0.
    report = _lint("SET lock_timeout = '1s';\nALTER TABLE x ADD COLUMN;\n", dialect="postgres")
    (finding,) = report.active
    assert (finding.rule, finding.line, finding.severity) == ("DURU001", 2, "error")
    assert report.has_errors
    assert finding.message.startswith("postgres parser: syntax error")


def test_broken_host_file_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("x = 1\ny = '''DROP TABLE a\n")
    report = lint_paths([path], dialect="sqlite")
    (finding,) = report.active
    assert finding.rule == "DURU001" and "cannot tokenize" in finding.message
    assert finding.statement == ""
    assert report.render_text().splitlines()[1].startswith("    cannot tokenize")


def test_file_that_is_not_utf8_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.sql"
    path.write_bytes("DROP TABLE caf\xe9;".encode("latin-1"))
    (finding,) = lint_paths([path]).active
    assert (finding.rule, finding.line) == ("DURU001", 1)
    assert "cannot read" in finding.message


def test_crlf_and_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "win.sql"
    path.write_bytes(b"\xef\xbb\xbfCREATE TABLE a (x);\r\nDROP TABLE b;\r\n")
    assert _active(lint_paths([path])) == [("DURU104", 2)]


# Paths and dialects ----------------------------------------------------------------------


def test_folders_are_walked_in_order_skipping_hidden_and_vendor(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "002.sql").write_text("DROP TABLE two;")
    (tmp_path / "001.sql").write_text("DROP TABLE one;")
    (tmp_path / "notes.txt").write_text("DROP TABLE ignored;")
    for skipped in (".git", "node_modules", "__pycache__"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.sql").write_text("DROP TABLE hidden;")
    report = lint_paths([tmp_path, tmp_path / "001.sql"])
    assert [summary.path for summary in report.files] == [
        str(tmp_path / "001.sql"),
        str(tmp_path / "b" / "002.sql"),
    ]
    assert [f.statement for f in report.active] == ["DROP TABLE one", "DROP TABLE two"]


def test_missing_path_and_unsupported_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        lint_paths([tmp_path / "absent.sql"])
    other = tmp_path / "schema.json"
    other.write_text("{}")
    with pytest.raises(UsageError):
        lint_paths([other])
    with pytest.raises(UsageError):
        lint_source("", Path("x.rb"))


def test_dialect_guess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in ("app", "supabase/migrations", "server"):
        Path(folder).mkdir(parents=True)
    Path("app/001.sql").write_text("CREATE TABLE a (x);")
    Path("app/002.sql").write_text("CREATE INDEX CONCURRENTLY a_x ON a (x);")
    Path("app/003.py").write_text("q = 'ALTER TABLE a ALTER COLUMN x TYPE text'\n")
    Path("supabase/migrations/001.sql").write_text("CREATE TABLE a (x int);")
    Path("server/m.ts").write_text("const q = 'CREATE TABLE a (x int)';\n")
    report = lint_paths([Path("app"), Path("supabase"), Path("server")])
    guesses = {s.path: (s.dialect, s.dialect_reason) for s in report.files}
    assert guesses == {
        # No syntax of its own: the folder's other .sql file decides.
        str(Path("app/001.sql")): ("postgres", "folder"),
        str(Path("app/002.sql")): ("postgres", "syntax"),
        str(Path("app/003.py")): ("postgres", "syntax"),
        str(Path("supabase/migrations/001.sql")): ("postgres", "path"),
        str(Path("server/m.ts")): ("postgres", "path"),
    }
    forced = lint_paths([Path("server")], dialect="sqlite")
    assert forced.files[0].dialect_reason == "flag"


def test_finding_is_a_frozen_record() -> None:
    (finding,) = _lint("DROP TABLE a;").findings
    assert isinstance(finding, Finding)
    with pytest.raises(AttributeError):
        finding.line = 2  # type: ignore[misc]


# Issue 12 defects -------------------------------------------------------------------------


def test_text_says_which_dialect_each_file_was_read_as(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder named neither postgres nor supabase nor server: the SQL decides, and
    # files with no evidence are named as guesses.
    monkeypatch.chdir(tmp_path)
    Path("db").mkdir()
    Path("db/001.sql").write_text("CREATE TABLE notes (id uuid DEFAULT gen_random_uuid());")
    Path("db/002.sql").write_text("CREATE TABLE tags (id int);")
    Path("app").mkdir()
    Path("app/001.sql").write_text("CREATE TABLE a (x);")
    report = lint_paths([Path("db"), Path("app")])
    reasons = {s.path: (s.dialect, s.dialect_reason) for s in report.files}
    assert reasons[str(Path("db/002.sql"))] == ("postgres", "folder")
    text = report.render_text()
    assert "read as postgres (dialect-only syntax in the file): 1 file(s)" in text
    assert "read as postgres (other files of its kind in its folder): 1 file(s)" in text
    assert "read as sqlite (no evidence either way" in text
    assert f"    {Path('app/001.sql')}" in text


def test_parse_error_fails_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import duru.cli.commands  # noqa: F401
    from duru.cli import app

    path = tmp_path / "001.sql"
    path.write_text("CREAT TABLE a (x);\n")
    result = CliRunner().invoke(app, ["migrate", "lint", "--dialect", "sqlite", str(path)])
    assert result.exit_code == 1, result.output
    assert "DURU001 error parse-error" in result.output


# Issue 12 settings and formats -------------------------------------------------------------


def test_text_states_why_and_fix_once_per_rule() -> None:
    report = _lint("DROP TABLE a;\nDROP TABLE b;\nDROP TABLE c;\n")
    text = report.render_text()
    assert text.count("why: ") == 1 and text.count("fix: ") == 1
    assert text.count("DURU104 error drop-without-backup") == 3


def test_findings_carry_columns_and_end_lines() -> None:
    report = _lint("CREATE TABLE a (x);  DROP TABLE b;\nDROP\n  TABLE c;\n")
    first, second = report.active
    assert (first.line, first.column, first.end_line, first.end_column) == (1, 22, 1, 33)
    assert (second.line, second.column, second.end_line, second.end_column) == (2, 1, 3, 9)


def test_github_annotations() -> None:
    from duru.migrate.lint.report_formats import render_github

    report = _lint("DROP TABLE a;\n", name="db/1,2.sql")
    (line,) = render_github(report).splitlines()
    assert line.startswith("::error file=db/1%2C2.sql,line=1,endLine=1,col=1,")
    assert "title=DURU104 drop-without-backup::DROP TABLE a destroys" in line


def test_sarif_log() -> None:
    from duru.migrate.lint.report_formats import to_sarif

    sql = "DROP TABLE a;\nDROP TABLE b; -- duru: allow DURU104 because cache\n"
    log = json.loads(json.dumps(to_sarif(_lint(sql))))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} == {r.id for r in RULES}
    active, suppressed = run["results"]
    assert active["ruleId"] == "DURU104" and active["level"] == "error"
    region = active["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "endLine": 1, "startColumn": 1, "endColumn": 13}
    assert suppressed["suppressions"] == [{"kind": "inSource", "justification": "cache"}]


def test_file_level_ignore() -> None:
    sql = "-- duru: allow-file DURU104 because a scratch database\nCREATE TABLE a (x);\n"
    sql += "DROP TABLE b;\n"
    report = _lint(sql)
    assert report.active == [] and report.findings[0].suppressed
    everything = "-- duru: allow-file all because fixture\nDROP TABLE b;\nCREAT x;\n"
    assert _lint(everything).active == []
    no_reason = "-- duru: allow-file DURU104\nDROP TABLE b;\n"
    assert sorted(f.rule for f in _lint(no_reason).active) == ["DURU002", "DURU104"]


def test_config_file_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import duru.cli.commands  # noqa: F401
    from duru.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    Path("m.sql").write_text("ALTER TABLE notes ADD COLUMN p boolean DEFAULT false;\n")
    runner = CliRunner()

    def rules(*args: str) -> list[str]:
        result = runner.invoke(app, ["migrate", "lint", "--format", "json", *args, "m.sql"])
        assert result.exit_code in (0, 1), result.output
        return sorted(f["rule"] for f in json.loads(result.stdout)["findings"])

    assert rules("--dialect", "postgres") == ["DURU208", "DURU221"]
    assert rules("--dialect", "postgres", "--pg-version", "10") == [
        "DURU208",
        "DURU209",
        "DURU221",
    ]
    Path("pyproject.toml").write_text(
        '[tool.duru.lint]\nexclude = ["ddl-without-statement-timeout"]\ndialect = "postgres"\n'
    )
    assert rules() == ["DURU208"]
    assert rules("--exclude", "DURU208") == []
    Path("duru.toml").write_text('[lint]\npg-version = 10\ndialect = "postgres"\n')
    assert rules() == ["DURU208", "DURU209", "DURU221"]
    Path("duru.toml").write_text("[lint]\nexclude = ['DURU999']\n")
    bad = runner.invoke(app, ["migrate", "lint", "m.sql"])
    assert bad.exit_code == 2 and "unknown rule DURU999" in bad.output


def test_assume_in_transaction_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import duru.cli.commands  # noqa: F401
    from duru.cli import app

    path = tmp_path / "m.sql"
    path.write_text("SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n")
    args = ["migrate", "lint", "--dialect", "postgres", str(path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, [*args[:2], "--assume-in-transaction", *args[2:]])
    assert result.exit_code == 1 and "DURU202" in result.output
