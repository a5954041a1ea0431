"""Rule semantics beyond the corpus, and proof on real databases that the dangers are real."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from duru.migrate.lint import lint_paths, lint_source
from duru.migrate.lint.facts import SqlType
from duru.migrate.lint.migration import Migration, Statement
from duru.migrate.lint.rules.column_type import is_widening
from duru.migrate.lint.rules.rebuild import find_rebuilds
from duru.migrate.lint.settings import LintSettings
from duru.migrate.lint.sqlite_reader import SqliteReader
from duru.migrate.lint.sqltext import split_sql

CORPUS = Path(__file__).parent / "lint_corpus"


# statement_timeout (DURU221) is asserted in its own tests; elsewhere it would be noise.
QUIET = LintSettings(exclude=frozenset({"DURU221"}))


def _rules(
    sql: str, dialect: str = "sqlite", name: str = "m.sql", settings: LintSettings = QUIET
) -> list[str]:
    report = lint_source(sql, Path(name), dialect=dialect, settings=settings)  # type: ignore[arg-type]
    return sorted(finding.rule for finding in report.active)


# General and SQLite rules -------------------------------------------------------------------


def test_vacuum_into_inside_a_transaction_is_no_backup() -> None:
    # VACUUM fails inside a transaction, so it cannot be the backup.
    assert _rules("BEGIN; VACUUM INTO 'b.db'; DROP TABLE note_links; COMMIT;") == ["DURU104"]
    assert _rules("VACUUM INTO 'b.db'; BEGIN; DROP TABLE note_links; COMMIT;") == []


def test_backup_marker_must_come_before_the_drop() -> None:
    assert _rules("DROP TABLE a;\n-- duru: backup verified\n") == ["DURU104"]
    assert _rules("DROP TABLE a; -- duru: backup verified\n") == []


def test_backup_follows_the_table_through_a_rename() -> None:
    sql = (
        "CREATE TABLE backup_tags AS SELECT * FROM note_tags;\n"
        "ALTER TABLE note_tags RENAME TO note_tags_old;\n"
        "DROP TABLE note_tags_old;\n"
    )
    assert _rules(sql) == []
    renamed_first = (
        "ALTER TABLE note_tags RENAME TO note_tags_old;\n"
        "CREATE TABLE note_tags (note_id TEXT, tag TEXT);\n"
        "CREATE TABLE backup_tags AS SELECT * FROM note_tags;\n"  # the new, empty table
        "DROP TABLE note_tags_old;\n"
        "PRAGMA foreign_key_check;\n"
    )
    assert _rules(renamed_first) == ["DURU104"]


def test_tables_created_in_the_migration_may_be_dropped() -> None:
    assert (
        _rules("CREATE TABLE scratch (a); INSERT INTO scratch (a) VALUES (1); DROP TABLE scratch;")
        == []
    )


def test_filtered_copy_is_fine_while_the_source_stays() -> None:
    assert _rules("INSERT INTO a (x) SELECT x FROM b WHERE x > 1 LIMIT 5;") == []


@pytest.mark.parametrize(
    "select",
    [
        "SELECT x FROM b LIMIT 10",
        "SELECT DISTINCT x FROM b",
        "SELECT x FROM b GROUP BY x",
        "SELECT b.x FROM b JOIN c USING (x)",
        "SELECT x FROM b INTERSECT SELECT x FROM c",
        "SELECT x FROM (SELECT x FROM b WHERE x > 0)",
        "WITH k AS (SELECT x FROM b WHERE x > 0) SELECT x FROM k",
    ],
)
def test_every_row_filter_counts(select: str) -> None:
    sql = f"-- duru: backup verified\nINSERT INTO a (x) {select};\nDROP TABLE b;\n"
    assert _rules(sql) == ["DURU103"]


def test_left_join_and_union_all_keep_every_row() -> None:
    sql = (
        "-- duru: backup verified\n"
        "INSERT INTO a (x) SELECT b.x FROM b LEFT JOIN c ON c.x = b.x UNION ALL SELECT 1;\n"
        "DROP TABLE b;\n"
    )
    assert _rules(sql) == []


def test_cascade_children_come_from_other_files_of_the_run(tmp_path: Path) -> None:
    schema = tmp_path / "001_schema.sql"
    schema.write_text(
        "CREATE TABLE local_notes (id TEXT PRIMARY KEY);\n"
        "CREATE TABLE note_tags (note_id TEXT REFERENCES local_notes (id) ON DELETE CASCADE);\n"
    )
    upgrade = tmp_path / "002_upgrade.sql"
    upgrade.write_text("-- duru: backup verified\nDROP TABLE local_notes;\n")
    together = lint_paths([tmp_path], dialect="sqlite")
    assert [(f.file, f.rule) for f in together.active] == [(str(upgrade), "DURU106")]
    assert "note_tags" in together.active[0].message
    # Linted alone, the file still sees its folder: the same finding (issue 12).
    alone = lint_paths([upgrade], dialect="sqlite")
    assert [(f.file, f.rule) for f in alone.active] == [(str(upgrade), "DURU106")]
    assert alone.files[0].context_files == 1


def test_sqlite_rebuild_orders_are_both_recognised() -> None:
    sql = (
        "CREATE TABLE a_new (x); INSERT INTO a_new (x) SELECT x FROM a; DROP TABLE a;\n"
        "ALTER TABLE a_new RENAME TO a;\n"
        "ALTER TABLE b RENAME TO b_old; CREATE TABLE b (x);\n"
        "INSERT INTO b (x) SELECT x FROM b_old; DROP TABLE b_old;\n"
        "CREATE TABLE c_new (x); DROP TABLE c_new;\n"
    )
    with SqliteReader() as reader:
        statements = tuple(
            Statement(index, raw.text, 1, 1, None, reader.read(raw.text))
            for index, raw in enumerate(split_sql(sql, "sqlite").statements)
        )
    rebuilds = find_rebuilds(Migration("m.sql", "sqlite", statements, ()))
    assert [(r.table, r.start.text, r.end.text) for r in rebuilds] == [
        ("a", "CREATE TABLE a_new (x)", "ALTER TABLE a_new RENAME TO a"),
        ("b", "ALTER TABLE b RENAME TO b_old", "DROP TABLE b_old"),
    ]


def test_fk_check_must_follow_the_rebuild() -> None:
    rebuild = (
        "-- duru: backup verified\n"
        "CREATE TABLE a_new (x); INSERT INTO a_new (x) SELECT x FROM a; DROP TABLE a;\n"
        "ALTER TABLE a_new RENAME TO a;\n"
    )
    assert _rules("PRAGMA foreign_key_check;\n" + rebuild) == ["DURU108"]
    assert _rules(rebuild + "PRAGMA foreign_key_check(other);\n") == ["DURU108"]
    assert _rules(rebuild + "PRAGMA main.foreign_key_check(a);\n") == []


def test_reading_the_pragma_inside_a_transaction_is_harmless() -> None:
    assert _rules("BEGIN; PRAGMA foreign_keys; COMMIT;") == []
    assert _rules("SAVEPOINT s; PRAGMA foreign_keys = ON; RELEASE s;") == ["DURU107"]


def test_unparsable_statement_does_not_hide_the_others() -> None:
    report = lint_source("DROP TABLE a;\nCREAT TABLE b (x);\nDROP TABLE c;\n", Path("m.sql"))
    assert [(f.rule, f.line) for f in report.active] == [
        ("DURU104", 1),
        ("DURU001", 2),
        ("DURU104", 3),
    ]
    assert "syntax error" in report.active[1].message


# PostgreSQL rules ------------------------------------------------------------------------


def test_index_rules_exempt_objects_created_in_the_migration() -> None:
    sql = (
        "SET lock_timeout = '3s';\n"
        "CREATE TABLE t (a int);\n"
        "CREATE INDEX t_a ON t (a);\n"
        "DROP INDEX t_a;\n"
        "DROP INDEX old_index;\n"
    )
    report = lint_source(sql, Path("m.sql"), dialect="postgres", settings=QUIET)
    assert [(f.rule, f.line) for f in report.active] == [("DURU201", 5)]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("SET lock_timeout = '5s';", []),
        ("SET lock_timeout TO 5000;", []),
        ("SET lock_timeout = 0;", ["DURU208"]),
        ("SET lock_timeout = '0ms';", ["DURU208"]),
        ("SET LOCAL lock_timeout = '5s';", ["DURU208"]),  # outside a transaction: no effect
        ("BEGIN; SET LOCAL lock_timeout = '5s';", ["DURU220"]),  # and no COMMIT
        ("BEGIN; SET LOCAL lock_timeout = '5s'; COMMIT;", ["DURU208"]),
        ("SET lock_timeout = '5s'; RESET lock_timeout;", ["DURU208"]),
    ],
)
def test_lock_timeout_state(setting: str, expected: list[str]) -> None:
    sql = f"{setting}\nALTER TABLE notes ADD COLUMN pinned boolean;\n"
    assert _rules(sql, "postgres") == expected


def test_timeouts_are_reported_once_per_migration() -> None:
    sql = "ALTER TABLE a ADD COLUMN x int;\nALTER TABLE b ADD COLUMN y int;\n"
    report = lint_source(sql, Path("m.sql"), dialect="postgres")
    assert [(f.rule, f.line) for f in report.active] == [("DURU208", 1), ("DURU221", 1)]


def test_validate_constraint_and_concurrent_index_take_no_blocking_lock() -> None:
    sql = (
        "ALTER TABLE a VALIDATE CONSTRAINT a_fk;\n"
        "CREATE INDEX CONCURRENTLY a_x ON a (x);\n"
        "CREATE TABLE n (id int);\n"
    )
    assert _rules(sql, "postgres") == []


def test_set_not_null_needs_the_check_validated_first() -> None:
    head = (
        "SET lock_timeout = '5s';\n"
        "ALTER TABLE notes ADD CONSTRAINT nn CHECK (user_id IS NOT NULL) NOT VALID;\n"
    )
    tail = "ALTER TABLE notes ALTER COLUMN user_id SET NOT NULL;\n"
    assert _rules(head + tail, "postgres") == ["DURU205"]
    validated = head + "ALTER TABLE notes VALIDATE CONSTRAINT nn;\n" + tail
    assert _rules(validated, "postgres") == []
    other_column = validated.replace("SET NOT NULL", "TYPE text").replace("user_id TYPE", "x TYPE")
    assert "DURU205" not in _rules(other_column, "postgres")


def _t(name: str, *mods: int) -> SqlType:
    return SqlType(name, mods)


@pytest.mark.parametrize(
    ("old", "new", "widening"),
    [
        (_t("varchar", 50), _t("varchar", 200), True),
        (_t("varchar", 50), _t("varchar"), True),
        (_t("varchar", 50), _t("text"), True),
        (_t("text"), _t("varchar"), True),
        (_t("varchar", 200), _t("varchar", 50), False),
        (_t("text"), _t("varchar", 50), False),
        (_t("numeric", 10, 2), _t("numeric", 12, 2), True),
        (_t("numeric", 10, 2), _t("numeric", 12, 3), False),
        (_t("numeric", 10, 2), _t("numeric"), True),
        (_t("numeric"), _t("numeric", 12, 2), False),
        (_t("int4"), _t("int8"), False),
        (_t("int4"), _t("text"), False),
        (_t("cidr"), _t("inet"), True),
        (_t("varbit", 8), _t("varbit", 16), True),
        (SqlType("varchar", (50,), array=True), _t("varchar", 100), False),
    ],
)
def test_binary_compatible_widenings(old: SqlType, new: SqlType, widening: bool) -> None:
    assert is_widening(old, new) is widening


def test_type_change_uses_types_from_earlier_files(tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text("CREATE TABLE notes (title varchar(100), n int);\n")
    change = tmp_path / "002.sql"
    change.write_text("SET lock_timeout = '5s';\nALTER TABLE notes ALTER COLUMN title TYPE text;\n")
    assert lint_paths([tmp_path], dialect="postgres", settings=QUIET).active == []
    # The file alone still sees its folder; without any folder the old type is unknown.
    assert lint_paths([change], dialect="postgres", settings=QUIET).active == []
    (alone,) = lint_source(
        change.read_text(), Path("002.sql"), dialect="postgres", settings=QUIET
    ).active
    assert (alone.rule, alone.severity) == ("DURU204", "warning")
    change.write_text("SET lock_timeout = '5s';\nALTER TABLE notes ALTER COLUMN n TYPE bigint;\n")
    (rewrite,) = lint_paths([tmp_path], dialect="postgres", settings=QUIET).active
    assert (rewrite.rule, rewrite.severity) == ("DURU204", "error")
    assert "from int4 to int8" in rewrite.message


def test_renames_of_tables_created_in_the_migration_break_nobody() -> None:
    sql = (
        "SET lock_timeout = '5s';\n"
        "CREATE TABLE notes_v2 (id uuid);\n"
        "ALTER TABLE notes_v2 RENAME COLUMN id TO note_id;\n"
        "ALTER TABLE notes_v2 RENAME TO notes_next;\n"
    )
    assert _rules(sql, "postgres") == []


def test_psycopg_placeholders_parse() -> None:
    sql = "SET lock_timeout = %s;\nINSERT INTO notes (id) VALUES (%(id)s);\n"
    assert _rules(sql, "postgres") == []


# The dangers are real: run the SQL on real databases ---------------------------------------


LEGACY_SCHEMA = """
CREATE TABLE local_notes (id TEXT PRIMARY KEY, title TEXT, body TEXT, updated_at INTEGER);
CREATE TABLE note_folders (
  note_id TEXT PRIMARY KEY REFERENCES local_notes (id) ON DELETE CASCADE,
  folder_id TEXT NOT NULL
);
"""


def _legacy_device(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA foreign_keys = ON;" + LEGACY_SCHEMA)
    db.executescript(
        "INSERT INTO local_notes VALUES ('n1', 'a', 'x', 1), ('n2', NULL, 'y', 2);\n"
        "INSERT INTO note_folders VALUES ('n1', 'f1'), ('n2', 'f2');\n"
    )
    return db


def _lint_with_schema(sql: str, folder: Path) -> list[str]:
    """Lint `sql` as the second migration of a folder whose first one is the legacy schema."""
    folder.mkdir()
    (folder / "011_schema.sql").write_text(LEGACY_SCHEMA)
    (folder / "012_upgrade.sql").write_text(sql)
    return sorted({finding.rule for finding in lint_paths([folder], dialect="sqlite").active})


def test_sqlite_ignores_the_pragma_inside_a_transaction(tmp_path: Path) -> None:
    dangerous = (
        "BEGIN;\n"
        "PRAGMA foreign_keys = OFF;\n"
        "CREATE TABLE local_notes_new (id TEXT PRIMARY KEY, title TEXT, body TEXT,\n"
        "  updated_at INTEGER);\n"
        "INSERT INTO local_notes_new (id, title, body, updated_at)\n"
        "  SELECT id, title, body, updated_at FROM local_notes;\n"
        "-- duru: backup verified\n"
        "DROP TABLE local_notes;\n"
        "ALTER TABLE local_notes_new RENAME TO local_notes;\n"
        "PRAGMA foreign_key_check;\n"
        "COMMIT;\n"
    )
    db = _legacy_device(tmp_path / "device.db")
    db.executescript(dangerous)
    assert db.execute("SELECT count(*) FROM note_folders").fetchone() == (0,)
    db.close()
    assert _lint_with_schema(dangerous, tmp_path / "bad") == ["DURU106", "DURU107"]

    safe = "PRAGMA foreign_keys = OFF;\n" + dangerous.replace("PRAGMA foreign_keys = OFF;\n", "")
    safe += "PRAGMA foreign_keys = ON;\n"
    db = _legacy_device(tmp_path / "device2.db")
    db.executescript(safe)
    assert db.execute("SELECT count(*) FROM note_folders").fetchone() == (2,)
    db.close()
    assert _lint_with_schema(safe, tmp_path / "good") == []


def test_good_sqlite_rebuild_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # VACUUM INTO writes its backup next to the working directory
    db = _legacy_device(tmp_path / "device.db")
    script = (CORPUS / "sqlite" / "good" / "DURU105_one_rebuild_sqlite_procedure.sql").read_text()
    db.executescript(script)
    assert db.execute("SELECT id, title FROM local_notes ORDER BY id").fetchall() == [
        ("n1", "a"),
        ("n2", ""),
    ]
    assert db.execute("SELECT count(*) FROM note_folders").fetchone() == (2,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
    backup = sqlite3.connect(tmp_path / "before-v13.db")
    assert backup.execute("SELECT count(*) FROM local_notes").fetchone() == (2,)
    backup.close()


def test_sqlite_refuses_not_null_column_without_default(tmp_path: Path) -> None:
    db = _legacy_device(tmp_path / "device.db")
    bad = (CORPUS / "sqlite" / "bad" / "DURU206_add_not_null_without_default.sql").read_text()
    with pytest.raises(sqlite3.OperationalError, match="NOT NULL"):
        db.executescript(bad)
    db.executescript(
        (CORPUS / "sqlite" / "good" / "DURU206_add_column_with_default.sql").read_text()
    )
    assert db.execute("SELECT version FROM local_notes").fetchall() == [(1,), (1,)]
    db.close()


def _run_postgres(conn: psycopg.Connection[tuple[object, ...]], path: Path) -> None:
    for raw in split_sql(path.read_text(), "postgres").statements:
        conn.execute(raw.text.encode())


def test_postgres_confirms_the_corpus(pg_url: str) -> None:
    pg = CORPUS / "postgres"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE notes (user_id uuid, id uuid, updated_at timestamptz, deleted_at"
            " timestamptz, kind text, version int);"
            "CREATE TABLE note_tags (user_id uuid, note_id uuid, tag_hmac bytea);"
            "CREATE INDEX notes_old_updated ON notes (updated_at);"
            "INSERT INTO notes"
            " VALUES (gen_random_uuid(), gen_random_uuid(), now(), now(), 'note', 1)"
        )
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            _run_postgres(conn, pg / "bad" / "DURU202_concurrently_in_transaction.sql")
        conn.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.NotNullViolation):
            _run_postgres(conn, pg / "bad" / "DURU206_add_not_null_without_default.sql")
        for good in ("DURU201_index_concurrently", "DURU205_check_then_set_not_null"):
            _run_postgres(conn, pg / "good" / f"{good}.sql")
        _run_postgres(conn, pg / "good" / "DURU206_add_column_with_default.sql")
        assert conn.execute("SELECT sort_order FROM notes").fetchall() == [(0,)]
        nullable = conn.execute(
            "SELECT is_nullable FROM information_schema.columns"
            " WHERE table_name = 'notes' AND column_name = 'deleted_at'"
        ).fetchone()
        assert nullable == ("NO",)


def test_create_table_if_not_exists_may_hold_rows() -> None:
    # An app's onCreate and onUpgrade often share a file: IF NOT EXISTS proves nothing is new.
    sqlite_sql = "CREATE TABLE IF NOT EXISTS notes (id TEXT);\nDROP TABLE notes;\n"
    assert _rules(sqlite_sql) == ["DURU104"]
    assert _rules(sqlite_sql.replace(" IF NOT EXISTS", "")) == []
    pg_sql = (
        "SET lock_timeout = '5s';\n"
        "CREATE TABLE IF NOT EXISTS notes (id uuid);\n"
        "CREATE INDEX notes_id ON notes (id);\n"
    )
    assert _rules(pg_sql, "postgres") == ["DURU201"]


# Issue 12 defects -------------------------------------------------------------------------


def test_sqlite_explicit_null_column_is_nullable() -> None:
    assert _rules("ALTER TABLE notes ADD COLUMN x TEXT NULL;") == []
    assert _rules("ALTER TABLE notes ADD COLUMN x TEXT NOT NULL;") == ["DURU206"]


def test_two_migration_not_null_pattern_is_accepted(tmp_path: Path) -> None:
    # The pattern DURU205's own fix recommends, split over migrations as teams do it.
    (tmp_path / "001_check.sql").write_text(
        "SET lock_timeout = '5s';\n"
        "ALTER TABLE notes ADD CONSTRAINT notes_title_nn CHECK (title IS NOT NULL) NOT VALID;\n"
    )
    second = tmp_path / "002_validate.sql"
    second.write_text(
        "SET lock_timeout = '5s';\n"
        "ALTER TABLE notes VALIDATE CONSTRAINT notes_title_nn;\n"
        "ALTER TABLE notes ALTER COLUMN title SET NOT NULL;\n"
        "ALTER TABLE notes DROP CONSTRAINT notes_title_nn;\n"
    )
    assert lint_paths([tmp_path], dialect="postgres", settings=QUIET).active == []
    assert lint_paths([second], dialect="postgres", settings=QUIET).active == []
    third = tmp_path / "003_other.sql"
    third.write_text(
        "SET lock_timeout = '5s';\nALTER TABLE notes ALTER COLUMN body SET NOT NULL;\n"
    )
    assert [f.rule for f in lint_paths([third], dialect="postgres", settings=QUIET).active] == [
        "DURU205"
    ]


def test_three_migration_not_null_pattern_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text(
        "ALTER TABLE notes ADD CONSTRAINT c CHECK (title IS NOT NULL) NOT VALID;\n"
    )
    (tmp_path / "002.sql").write_text("ALTER TABLE notes VALIDATE CONSTRAINT c;\n")
    last = tmp_path / "003.sql"
    last.write_text(
        "SET lock_timeout = '5s';\nALTER TABLE notes ALTER COLUMN title SET NOT NULL;\n"
    )
    assert lint_paths([last], dialect="postgres", settings=QUIET).active == []


@pytest.mark.parametrize(
    ("using", "rules"),
    [
        ("", []),
        (" USING title", []),
        (" USING title::text", []),
        (" USING title::varchar(50)", ["DURU204"]),
        (" USING lower(title)", ["DURU204"]),
    ],
)
def test_using_a_plain_cast_on_a_widening_is_no_rewrite(using: str, rules: list[str]) -> None:
    sql = f"SET lock_timeout = '5s';\nALTER TABLE notes ALTER COLUMN title TYPE text{using};\n"
    # IF NOT EXISTS: the table may hold rows, and its declared type is known.
    known = "CREATE TABLE IF NOT EXISTS notes (title varchar(100));\n" + sql
    assert _rules(known, "postgres") == rules


def test_a_file_alone_gets_the_findings_it_gets_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text(
        "CREATE TABLE parent (id TEXT PRIMARY KEY);\n"
        "CREATE TABLE child (p TEXT REFERENCES parent (id) ON DELETE CASCADE);\n"
    )
    (tmp_path / "002.sql").write_text("VACUUM INTO 'b.db';\nDROP TABLE parent;\n")
    (tmp_path / "003.sql").write_text("ALTER TABLE child ADD COLUMN n TEXT NULL;\n")
    together = lint_paths([tmp_path], dialect="sqlite")
    for path in sorted(tmp_path.iterdir()):
        alone = lint_paths([path], dialect="sqlite")
        expected = [f for f in together.findings if f.file == str(path)]
        assert alone.findings == expected, path.name


# Issue 12 coverage: semantics beyond the corpus ---------------------------------------------

T = "SET lock_timeout = '5s'; SET statement_timeout = '30s';\n"


def test_statements_inside_do_blocks_are_linted() -> None:
    sql = (
        T
        + "DO $$\nBEGIN\n  IF true THEN\n    CREATE INDEX notes_x ON notes (x);\n"
        + "  END IF;\nEND\n$$;\n"
    )
    assert _rules(sql, "postgres") == ["DURU201"]
    drop = "DO $$ BEGIN DROP TABLE notes; END $$;"
    assert _rules(T + drop, "postgres") == ["DURU104"]


def test_do_block_alter_then_update_is_a_backfill_under_lock() -> None:
    sql = (
        T
        + "DO $$ BEGIN ALTER TABLE notes ADD COLUMN p boolean; UPDATE notes SET p = false; END $$;"
    )
    assert _rules(sql, "postgres") == ["DURU222"]


def test_assume_in_transaction_makes_validate_share_the_lock() -> None:
    sql = T + (
        "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (p) REFERENCES p (id) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT t_fk;\n"
    )
    assert _rules(sql, "postgres") == []
    wrapped = LintSettings(assume_in_transaction=True, exclude=QUIET.exclude)
    assert _rules(sql, "postgres", settings=wrapped) == ["DURU212"]
    assert _rules("BEGIN;\n" + sql + "COMMIT;\n", "postgres", settings=wrapped) == [
        "DURU212",
        "DURU220",
    ]


def test_assume_in_transaction_makes_concurrently_fail() -> None:
    sql = "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n"
    assert _rules(sql, "postgres") == []
    wrapped = LintSettings(assume_in_transaction=True, exclude=QUIET.exclude)
    assert _rules(sql, "postgres", settings=wrapped) == ["DURU202"]


def test_concurrently_alone_in_a_wrapped_file_runs_alone() -> None:
    # A one-statement file is no transaction block: Supabase's own advice for CONCURRENTLY
    # (supabase/cli#2898) was to give it a migration file of its own.
    wrapped = LintSettings(assume_in_transaction=True, exclude=QUIET.exclude)
    alone = "-- built without blocking writes\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n"
    assert _rules(alone, "postgres", settings=wrapped) == []
    assert _rules("DROP INDEX CONCURRENTLY a_x;", "postgres", settings=wrapped) == []


@pytest.mark.parametrize(
    ("version", "sql", "expected"),
    [
        (10, "ALTER TABLE notes ADD COLUMN p boolean DEFAULT false;", ["DURU209"]),
        (11, "ALTER TABLE notes ADD COLUMN p boolean DEFAULT false;", []),
        (16, "ALTER TABLE notes ADD COLUMN p timestamptz DEFAULT now();", []),
        (16, "ALTER TABLE notes ADD COLUMN p timestamptz DEFAULT clock_timestamp();", ["DURU209"]),
    ],
)
def test_pg_version_decides_instant_defaults(version: int, sql: str, expected: list[str]) -> None:
    settings = LintSettings(pg_version=version, exclude=QUIET.exclude)
    assert _rules(T + sql, "postgres", settings=settings) == expected


def test_old_servers_get_a_version_note() -> None:
    settings = LintSettings(pg_version=11)
    report = lint_source(
        T + "REINDEX INDEX i;", Path("m.sql"), dialect="postgres", settings=settings
    )
    (finding,) = report.active
    assert "needs PostgreSQL 12" in finding.message
    detach = T + "ALTER TABLE e DETACH PARTITION e_2023;"
    report = lint_source(detach, Path("m.sql"), dialect="postgres", settings=settings)
    assert [(f.rule, f.severity) for f in report.active] == [("DURU217", "warning")]


@pytest.mark.parametrize(
    ("statement", "rules"),
    [
        ("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE;", ["DURU208", "DURU221"]),
        ("COMMENT ON COLUMN notes.title IS 'the title';", ["DURU208", "DURU221"]),
        ("CREATE TYPE note_kind AS ENUM ('note', 'task');", ["DURU208", "DURU221"]),
        ("VACUUM FULL notes;", ["DURU208", "DURU221"]),
        ("REINDEX INDEX notes_pkey;", ["DURU208", "DURU216", "DURU221"]),
        ("VACUUM notes;", []),
    ],
)
def test_statements_that_need_timeouts(statement: str, rules: list[str]) -> None:
    assert _rules(statement, "postgres", settings=LintSettings()) == rules


def test_orphan_delete_forms() -> None:
    left_join = (
        "DELETE FROM note_tags USING note_tags nt LEFT JOIN notes n ON n.id = nt.note_id "
        "WHERE n.id IS NULL;"
    )
    assert _rules(T + left_join, "postgres") == ["DURU223"]
    assert _rules(T + "DELETE FROM note_tags WHERE tag = 'x';", "postgres") == []
    assert _rules("DELETE FROM t WHERE p NOT IN (SELECT id FROM p);") == ["DURU223"]
    assert _rules("DELETE FROM t WHERE p NOT IN (1, 2);") == []


def test_inline_unique_and_primary_key_columns() -> None:
    assert _rules(T + "ALTER TABLE notes ADD COLUMN slug text UNIQUE;", "postgres") == ["DURU210"]
    new = T + "CREATE TABLE n2 (id int);\nALTER TABLE n2 ADD CONSTRAINT n2_pk PRIMARY KEY (id);"
    assert _rules(new, "postgres") == []


def test_create_domain_with_check_is_a_warning() -> None:
    sql = T + "CREATE DOMAIN title_text AS text CHECK (length(VALUE) < 500);"
    report = lint_source(sql, Path("m.sql"), dialect="postgres", settings=QUIET)
    assert [(f.rule, f.severity) for f in report.active] == [("DURU218", "warning")]
