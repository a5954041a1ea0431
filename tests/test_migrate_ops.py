"""Operations as data: descriptions, inverses, SQL per operation, specs derived from the model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from migrate_support import (
    LINK_TITLES,
    NOTES_V2,
    TASKS_V1,
    TASKS_V2,
    TitleKeys,
    fast_config,
    make_device_file,
    schema,
    set_of,
)

from duru.errors import LintFailed, MigrationError, UsageError
from duru.local.schema import create_indexes, create_search, create_table
from duru.migrate.device_migrations import detect_version
from duru.migrate.migration import Migration, MigrationSet
from duru.migrate.ops import (
    AddColumn,
    AddForeignKey,
    AddIndex,
    ChangeType,
    CreateTable,
    DropColumn,
    DropForeignKey,
    DropIndex,
    DropTable,
    Generated,
    IndexSpec,
    Operation,
    RawSQL,
    RebuildTable,
    RenameColumn,
    RenameTable,
    SetMeta,
    TableSpec,
    TransformData,
)
from duru.migrate.sqlite.device_spec import table_spec
from duru.migrate.sqlite.engine import plan, run
from duru.migrate.sqlite.impl import split_statements
from duru.model import ENTITIES, NOTE

INDEX = IndexSpec("ix_notes_note_type", "notes", ("note_type",), where='"deleted" = 0')
CHANGE = ChangeType(
    "tasks",
    "estimated_minutes",
    "INTEGER",
    "REAL",
    '"estimated_minutes" * 1.0',
    'CAST("estimated_minutes" AS INTEGER)',
    spec=TASKS_V2,
    source=TASKS_V1,
)
REVERSIBLE: list[Operation] = [
    CreateTable(LINK_TITLES),
    DropTable("link_titles", spec=LINK_TITLES),
    RenameTable("a", "b"),
    AddColumn("notes", "mood", "TEXT"),
    DropColumn("notes", "mood", "TEXT"),
    RenameColumn("notes", "title", "heading"),
    AddIndex(INDEX),
    DropIndex(INDEX.name, index=INDEX),
    CHANGE,
    AddForeignKey("tasks", "note_id", "notes", spec=TASKS_V2, source=TASKS_V1),
    DropForeignKey("tasks", "note_id", "notes", spec=TASKS_V1, source=TASKS_V2),
    RawSQL("CREATE TABLE t (x)", reverse_sql="DROP TABLE t"),
]


@pytest.mark.parametrize("op", REVERSIBLE, ids=lambda op: type(op).__name__)
def test_reversing_twice_gives_the_operation_back(op: Operation) -> None:
    back = op.reverse().reverse()
    if isinstance(op, RawSQL):
        assert (back.sql, back.reverse_sql) == (op.sql, op.reverse_sql)  # type: ignore[attr-defined]
    else:
        assert back == op
    assert op.describe() and op.reverse().describe() != op.describe()


@pytest.mark.parametrize(
    "op",
    [
        DropTable("notes"),
        DropColumn("notes", "title"),
        DropIndex("ix"),
        RebuildTable(NOTES_V2),
        TransformData("note_links", "link_titles", TitleKeys()),
        RawSQL("DELETE FROM notes"),
        SetMeta("k", "v"),
    ],
    ids=lambda op: type(op).__name__,
)
def test_operations_without_an_inverse_say_so(op: Operation) -> None:
    with pytest.raises(MigrationError, match="cannot reverse"):
        op.reverse()


def test_descriptions_name_what_changes() -> None:
    assert CHANGE.describe() == "change type of tasks.estimated_minutes from INTEGER to REAL"
    assert AddIndex(INDEX).describe() == "add index ix_notes_note_type on notes (note_type)"
    assert AddForeignKey("tasks", "note_id", "notes", on_delete="CASCADE").describe() == (
        "add foreign key tasks.note_id -> notes.id on delete cascade"
    )
    assert SetMeta("device_id", Generated.UUID).describe() == "set device_id to a new uuid"
    assert RawSQL("UPDATE notes SET title = ''", why="blank").describe() == (
        "run SQL: UPDATE notes SET title = '' (blank)"
    )


@pytest.mark.parametrize("e", ENTITIES, ids=lambda e: e.name)
def test_specs_render_exactly_the_device_schema(e: object) -> None:
    spec = table_spec(e)  # type: ignore[arg-type]
    assert spec.create == create_table(e)  # type: ignore[arg-type]
    assert [ix.sql() for ix in spec.indexes] == create_indexes(e)  # type: ignore[arg-type]
    assert list(spec.after) == create_search(e)  # type: ignore[arg-type]


def test_a_spec_renames_only_its_own_table() -> None:
    spec = table_spec(NOTE)
    renamed = spec.create_as("_duru_new_notes")
    assert renamed.startswith('CREATE TABLE "_duru_new_notes" (')
    assert (
        renamed[len('CREATE TABLE "_duru_new_notes" (') :]
        == spec.create[len('CREATE TABLE "notes" (') :]
    )
    with pytest.raises(ValueError, match="must start with"):
        TableSpec("notes", "CREATE TABLE other (x)", ("x",))


def test_statements_split_on_complete_statements_only() -> None:
    sql = (
        "CREATE TABLE t (x TEXT DEFAULT 'a;b');\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;\n"
        "INSERT INTO t (x) VALUES ('e')"
    )
    assert split_statements(sql) == [
        "CREATE TABLE t (x TEXT DEFAULT 'a;b')",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END",
        "INSERT INTO t (x) VALUES ('e')",
    ]


def test_plan_refuses_what_sqlite_or_the_engine_cannot_do_safely(tmp_path: Path) -> None:
    path = make_device_file(tmp_path / "d.db", notes=5)
    bad = [
        (AddColumn("notes", "k", "TEXT PRIMARY KEY"), UsageError, "RebuildTable"),
        (AddColumn("notes", "k", "TEXT NOT NULL"), UsageError, "DEFAULT"),
        (ChangeType("tasks", "position", "INTEGER", "TEXT", "x", "x"), UsageError, "spec"),
        (RawSQL("BEGIN; UPDATE notes SET title = ''; COMMIT"), UsageError, "BEGIN"),
        (RawSQL("INSERT OR IGNORE INTO notes SELECT * FROM notes"), LintFailed, "lint"),
    ]
    for op, error, words in bad:
        with pytest.raises(error, match=words):
            plan(path, migrations=set_of(op))


def test_a_rebuild_may_not_follow_a_change_to_its_table(tmp_path: Path) -> None:
    path = make_device_file(tmp_path / "d.db", notes=5)
    ops = set_of(AddColumn("tasks", "k", "TEXT"), CHANGE)
    with pytest.raises(UsageError, match="bridged before"):
        plan(path, migrations=ops)


def test_applying_then_reversing_restores_the_schema_and_the_values(tmp_path: Path) -> None:
    path = make_device_file(tmp_path / "d.db", notes=60)
    before = schema(path)
    estimates = _estimates(path)
    forward = (
        CreateTable(LINK_TITLES),
        AddColumn("saved_searches", "archived", "INTEGER NOT NULL DEFAULT 0"),
        AddIndex(INDEX),
        CHANGE,
        RenameColumn("templates", "icon", "glyph"),
    )
    back = tuple(op.reverse() for op in reversed(forward))
    chain = MigrationSet(
        (
            Migration("0002_forward", "1", "2", forward),
            Migration("0003_back", "2", "3", back),
        ),
        current="3",
        detect=detect_version,
    )
    run(path, migrations=chain, config=fast_config())
    after = [row for row in schema(path) if row[1] != "duru_meta"]
    assert after == [row for row in before if row[1] != "duru_meta"]
    assert _estimates(path) == estimates
    assert [type(op) for op in back][:2] == [RenameColumn, ChangeType]


def _estimates(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(
            conn.execute(
                "SELECT id, estimated_minutes, typeof(estimated_minutes) FROM tasks ORDER BY id"
            )
        )
    finally:
        conn.close()


def test_the_package_exports_the_engine_entry_points() -> None:
    import duru.migrate

    engine = {"plan", "run", "resume", "status", "history", "rollback", "RunConfig", "RunReport"}
    assert engine <= set(duru.migrate.__all__)
    assert all(hasattr(duru.migrate, name) for name in duru.migrate.__all__)
    assert list(duru.migrate.__all__) == sorted(
        duru.migrate.__all__, key=lambda n: (n.islower(), n)
    )
