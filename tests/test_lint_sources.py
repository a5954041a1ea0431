"""Reading SQL out of source files: string scanners, line maps, SQL detection, splitting."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duru.migrate.lint import lint_source
from duru.migrate.lint.sources import scan_source
from duru.migrate.lint.sources.base import Placeholders, ScannedSource
from duru.migrate.lint.sources.dart import scan_dart
from duru.migrate.lint.sources.detect import looks_like_sql
from duru.migrate.lint.sources.kotlin import scan_kotlin
from duru.migrate.lint.sources.pystrings import NotAStringLiteral, decode_python_literal
from duru.migrate.lint.sources.python import scan_python
from duru.migrate.lint.sources.swift import scan_swift
from duru.migrate.lint.sources.typescript import scan_typescript
from duru.migrate.lint.sqltext import split_sql


def _texts(scanned: ScannedSource) -> list[str]:
    return [literal.text for literal in scanned.literals]


def _lines(scanned: ScannedSource, index: int, needle: str) -> int:
    literal = scanned.literals[index]
    return literal.lines.line_at(literal.text.index(needle))


# Python ---------------------------------------------------------------------------------

_ESCAPES = [
    "\\n", "\\t", "\\\\", "\\'", '\\"', "\\x41", "\\u00e9", "\\U0001F600", "\\101", "\\7",
    "\\N{BULLET}", "\\d", "\\a", "\\0",
]  # fmt: skip
_PLAIN = st.text(st.characters(exclude_characters="\\'\"\r\n\x00", codec="utf-8"), max_size=8)


@st.composite
def _python_literal(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from(["'", '"', "'''", '"""']))
    raw = draw(st.booleans())
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["plain", "escape", "newline"]))
        if kind == "plain":
            parts.append(draw(_PLAIN))
        elif kind == "escape" and not raw:
            parts.append(draw(st.sampled_from(_ESCAPES)))
        elif kind == "newline" and len(quote) == 3:
            parts.append("\n")
        elif kind == "newline" and not raw:
            parts.append("\\\n")
    body = "".join(parts)
    return ("r" if raw else "") + quote + body + quote


@given(_python_literal())
def test_python_decoder_agrees_with_the_compiler(source: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes like \d are part of the test
        expected = ast.literal_eval(source)
    text, _ = decode_python_literal(source, 1, Placeholders()).build(1)
    assert text == expected


@given(st.text(max_size=30))
def test_python_decoder_reads_any_repr(value: str) -> None:
    text, _ = decode_python_literal(repr(value), 1, Placeholders()).build(1)
    assert text == value


def test_python_fstring_fields_become_placeholders() -> None:
    source = "f'''INSERT INTO {table!r:>{width}} VALUES ({{1}}, {d[\"k\"]})'''"
    text, _ = decode_python_literal(source, 1, Placeholders()).build(1)
    assert text == "INSERT INTO duru_expr_1 VALUES ({1}, duru_expr_2)"


def test_python_bytes_are_not_decoded() -> None:
    with pytest.raises(NotAStringLiteral):
        decode_python_literal("b'DROP TABLE x'", 1, Placeholders())


def test_python_scan_joins_implicit_and_plus_concatenation() -> None:
    source = (
        "x = (\n"
        "    'DROP '  # first half\n"
        "    \"TABLE \" + 'notes'\n"
        ")\n"
        "y = 'a' + z + 'b'\n"
        "w = b'bytes'\n"
    )
    scanned = scan_python(source)
    assert _texts(scanned) == ["DROP TABLE notes", "a", "b"]
    assert scanned.literals[0].open_line == 2
    assert _lines(scanned, 0, "notes") == 3
    (comment,) = scanned.comments
    assert (comment.line, comment.text, comment.own_line) == (2, "first half", False)


def test_python_escaped_newlines_keep_their_source_line() -> None:
    source = 'q = "CREATE TABLE a (x);\\nDROP TABLE b"\nr = """\n  ALTER TABLE c\n"""\n'
    scanned = scan_python(source)
    assert _lines(scanned, 0, "DROP") == 1
    assert _lines(scanned, 1, "ALTER") == 3


def test_python_tokenizer_errors_are_reported_not_raised() -> None:
    scanned = scan_python("x = '''never closed\n")
    assert scanned.problems and scanned.problems[0].message.startswith("cannot tokenize")


# Dart -----------------------------------------------------------------------------------


def test_dart_strings() -> None:
    source = (
        "// duru: allow DURU104 because x\n"
        "final a = '''\n"
        "  DROP TABLE \\$x $name ${f('}')};\n"
        "''';\n"
        "final b = r'raw \\n $x' \"\\u{1F600}\\x41\";\n"
        "final c = 'it\\'s' /* nested /* ok */ still */ 'joined';\n"
    )
    scanned = scan_dart(source)
    assert _texts(scanned) == [
        "  DROP TABLE $x duru_expr_1 duru_expr_2;\n",
        "raw \\n $x\U0001f600A",
        "it'sjoined",
    ]
    assert scanned.literals[0].open_line == 2
    assert _lines(scanned, 0, "DROP") == 3
    assert [comment.line for comment in scanned.comments] == [1, 6]
    assert scanned.comments[0].own_line and not scanned.comments[1].own_line


# TypeScript -----------------------------------------------------------------------------


def test_typescript_strings_templates_and_regex() -> None:
    source = (
        "const re = /'[\"`]/g; const half = total / 2 / 'x'.length;\n"
        "db.exec(`CREATE TABLE t (\n"
        "  a ${f(`inner ${y}`)} TEXT\n"
        ")`); // trailing\n"
        "const raw = String.raw`a\\nb`; const cont = 'x\\\n"
        "y';\n"
    )
    scanned = scan_typescript(source)
    assert _texts(scanned) == [
        "x",
        "CREATE TABLE t (\n  a duru_expr_2 TEXT\n)",
        "a\\nb",
        "xy",
    ]
    assert _lines(scanned, 1, "TEXT") == 3
    assert scanned.comments[0].text == "trailing"


# Kotlin ---------------------------------------------------------------------------------


def test_kotlin_strings() -> None:
    source = (
        "val q = '\"'\n"
        'val s = """\n'
        "    SELECT * FROM ${'$'}t WHERE x = $id AND y = ${f(\"}\")}\n"
        '""""\n'
        'val e = "a\\tb\\u0041 $"\n'
        'val `odd "name"` = 1 /* a /* nested */ comment */\n'
    )
    scanned = scan_kotlin(source)
    assert _texts(scanned) == [
        '\n    SELECT * FROM $t WHERE x = duru_expr_1 AND y = duru_expr_2\n"',
        "a\tbA $",
    ]
    assert _lines(scanned, 0, "SELECT") == 3
    assert scanned.comments[0].text == "a /* nested */ comment"


# Swift ----------------------------------------------------------------------------------


def test_swift_strings() -> None:
    source = (
        'let a = "x \\(f("(")) \\u{41}"\n'
        'let m = """\n'
        "    CREATE TABLE t (\n"
        "      a TEXT \\\n"
        "    NOT NULL\n"
        "    )\n"
        '    """\n'
        'let r = #"raw \\n \\#(v) "q" "#\n'
        'let e = #/re"/#\n'
    )
    scanned = scan_swift(source)
    assert _texts(scanned) == [
        "x duru_expr_1 A",
        "CREATE TABLE t (\n  a TEXT NOT NULL\n)",
        'raw \\n duru_expr_2 "q" ',
    ]
    assert _lines(scanned, 1, "CREATE") == 3
    assert _lines(scanned, 1, "NOT NULL") == 5


# Detection and dispatch -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "  CREATE TABLE x (a)",
        "-- duru: allow DURU101 because y\nINSERT OR IGNORE INTO a SELECT 1",
        "select * from notes",
        "DELETE FROM notes",
        "update notes set a = 1",
        "BEGIN",
        "COMMIT;",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SET lock_timeout = '5s'",
        "PRAGMA foreign_keys = OFF",
        "VACUUM INTO 'x.db'",
    ],
)
def test_sql_is_recognised(text: str) -> None:
    assert looks_like_sql(text)


@pytest.mark.parametrize(
    "text",
    ["Delete note?", "Create a folder", "Select a note", "Begin", "commit", "End", "Set the title",
     "Update available", "Drop it", "", "   ", "notes"],
)  # fmt: skip
def test_interface_text_is_not_sql(text: str) -> None:
    assert not looks_like_sql(text)


def test_scan_source_keeps_only_sql_strings() -> None:
    source = "label = 'Delete note?'\nsql = 'DROP TABLE notes'\n"
    scanned = scan_source(Path("m.py"), source)
    assert _texts(scanned) == ["DROP TABLE notes"]


def test_scan_source_reads_sql_files_whole() -> None:
    scanned = scan_source(Path("001.SQL"), "DROP TABLE a;\nDROP TABLE b;\n")
    assert scanned.is_sql_file and _texts(scanned) == ["DROP TABLE a;\nDROP TABLE b;\n"]
    assert _lines(scanned, 0, "DROP TABLE b") == 2


def test_unsupported_suffix_is_refused() -> None:
    with pytest.raises(KeyError):
        scan_source(Path("m.java"), "")


# Splitting --------------------------------------------------------------------------------


def _statements(text: str, dialect: str) -> list[str]:
    return [raw.text for raw in split_sql(text, dialect).statements]  # type: ignore[arg-type]


def test_sqlite_split_keeps_trigger_bodies_and_quotes_whole() -> None:
    text = (
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; UPDATE c SET d = ';'; END;\n"
        "INSERT INTO [we;ird] (`x;`) VALUES ('it''s;', \"q;\"); -- c;omment\n"
        "/* block; */ DROP TABLE z"
    )
    assert _statements(text, "sqlite") == [
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; UPDATE c SET d = ';'; END",
        "INSERT INTO [we;ird] (`x;`) VALUES ('it''s;', \"q;\")",
        "DROP TABLE z",
    ]
    comments = split_sql(text, "sqlite").comments
    assert [comment.text for comment in comments] == ["c;omment", "block;"]
    assert [comment.own_line for comment in comments] == [False, True]


def test_postgres_split_knows_dollar_quotes_and_escape_strings() -> None:
    text = (
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "SELECT E'it\\'s;', $1, 'a;b';\n"
        "/* outer /* inner; */ still; */ SELECT 2"
    )
    assert _statements(text, "postgres") == [
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
        "SELECT E'it\\'s;', $1, 'a;b'",
        "SELECT 2",
    ]


def test_split_offsets_point_into_the_text() -> None:
    text = "\n\n  DROP TABLE a ;  ;\nDROP TABLE b"
    split = split_sql(text, "sqlite")
    assert [text[raw.start : raw.end] for raw in split.statements] == [
        "DROP TABLE a",
        "DROP TABLE b",
    ]


# Robustness -------------------------------------------------------------------------------

_ATOMS = st.sampled_from(
    [*"'\"`\\$#{}()[];/*-+\n\t abcrfx0u\x00é", "'''", '"""', "${", "\\(", "\\u{", "\\x",
     "\\N{", '#"', "r'", "f'", "//", "/*", "*/", "--", "$$", "E'", "DROP TABLE ", "BEGIN;",
     "INSERT OR IGNORE INTO a SELECT * FROM b", "CREATE TRIGGER t BEGIN ", "END", "PRAGMA x=1;"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_ATOMS, max_size=40).map("".join),
    st.sampled_from([".sql", ".py", ".dart", ".ts", ".kt", ".swift"]),
    st.sampled_from(["sqlite", "postgres"]),
)
def test_linter_never_crashes(text: str, suffix: str, dialect: str) -> None:
    report = lint_source(text, Path("f" + suffix), dialect=dialect)  # type: ignore[arg-type]
    assert all(1 <= finding.line <= text.count("\n") + 1 for finding in report.findings)


@pytest.mark.parametrize("source", ["x", "é", "r", "$", "/", "#", "'", '"""', "`${"])
def test_scanners_stop_at_the_end_of_text(source: str) -> None:
    for scan in (scan_dart, scan_typescript, scan_kotlin, scan_swift):
        scan(source)


# Issue 12: interpolated SQL fragments -------------------------------------------------------


def test_dart_interpolated_fragments_are_no_parse_error_and_show_as_written() -> None:
    dart = (
        "final a = 'CREATE TABLE t (${cols.map((c) => '$c TEXT').join(', ')})';\n"
        "final b = 'ALTER TABLE notes ADD COLUMN c TEXT ${nullable ? '' : 'NOT NULL'}';\n"
        "final c = 'DROP TABLE ${tables[0]}';\n"
        "final d = 'ALTER TABLE $table ADD COLUMN x TEXT NOT NULL';\n"
    )
    report = lint_source(dart, Path("m.dart"), dialect="postgres")
    rules = [finding.rule for finding in report.active]
    assert "DURU001" not in rules
    text = report.render_text()
    assert "duru_expr_" not in text
    drop = next(f for f in report.active if f.rule == "DURU104")
    assert drop.statement == "DROP TABLE ${tables[0]}"
    add = next(f for f in report.active if f.rule == "DURU206")
    assert "ALTER TABLE $table" in add.statement and "on a $table" in add.message


def test_python_and_swift_interpolations_show_as_written() -> None:
    py = 'q = f"DROP TABLE {name}"\n'
    (finding,) = lint_source(py, Path("m.py"), dialect="sqlite").active
    assert finding.statement == "DROP TABLE {name}"
    swift = 'let q = "DROP TABLE \\(name)"\n'
    (finding,) = lint_source(swift, Path("m.swift"), dialect="sqlite").active
    assert finding.statement == "DROP TABLE \\(name)"


def test_fragment_that_never_parses_is_counted_not_failed() -> None:
    dart = "final a = 'CREATE TABLE t (${cols}) ${options} PARTITION';\n"
    report = lint_source(dart, Path("m.dart"), dialect="postgres")
    assert report.active == []
    assert report.files[0].runtime_built == 1
    assert "built from interpolated fragments at run time" in report.render_text()
