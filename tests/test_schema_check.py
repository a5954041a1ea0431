"""``check_schema``: a clean pair is ok; every planted mismatch is found and named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from duru.errors import CorruptDatabase, NotFound, SchemaCheckError, ServerUnavailable
from duru.local import Database
from duru.local.schema import SCHEMA_VERSION, device_ddl
from duru.model import MODEL_FINGERPRINT
from duru.remote.schema import apply_server_schema
from duru.schemacheck import Mismatch, MismatchKind, SchemaReport, check_schema

K = MismatchKind
Conn = psycopg.Connection[TupleRow]


# --- helpers ----------------------------------------------------------------------------


def device(tmp_path: Path, *sql: str) -> Path:
    """A device file made by duru, then changed by ``sql``."""
    path = tmp_path / "device.db"
    Database.open(path).close()
    with sqlite3.connect(path) as conn:
        for stmt in sql:
            conn.execute(stmt)
    return path


def device_edited(tmp_path: Path, table: str, old: str, new: str) -> Path:
    """A device file whose CREATE TABLE of ``table`` had ``old`` replaced by ``new``."""
    path = tmp_path / "edited.db"
    conn = sqlite3.connect(path)
    hits = 0
    for stmt in device_ddl():
        if stmt.startswith(f'CREATE TABLE "{table}"'):
            assert stmt.count(old) == 1, f"{old!r} not once in {table}"
            stmt, hits = stmt.replace(old, new), hits + 1
        conn.execute(stmt)
    assert hits == 1
    meta = {"schema_version": str(SCHEMA_VERSION), "model_fingerprint": MODEL_FINGERPRINT}
    conn.executemany("INSERT INTO duru_meta (key, value) VALUES (?, ?)", meta.items())
    conn.commit()
    conn.close()
    return path


def server(pg_url: str, *sql: str) -> str:
    """The test database with the server schema applied, then changed by ``sql``."""
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        for stmt in sql:
            conn.execute(stmt)  # type: ignore[arg-type]
    return pg_url


def only(report: SchemaReport, kind: MismatchKind) -> Mismatch:
    """The single mismatch of ``kind``; fails if there are others of any kind."""
    assert [m.kind for m in report.mismatches] == [kind], report.render_text()
    return report.mismatches[0]


# --- a clean pair -------------------------------------------------------------------------


def test_a_clean_pair_is_ok(tmp_path: Path, pg_url: str) -> None:
    report = check_schema(device(tmp_path), server(pg_url))
    assert report.ok and report.mismatches == (), report.render_text()
    assert report.checked == ("device", "server")
    assert json.loads(report.to_json())["ok"] is True
    text = report.render_text()
    assert "device" in text and "server" in text and "matches the model" in text
    assert text.endswith(f"compatible with model {MODEL_FINGERPRINT}")
    report.raise_for_errors()


def test_one_side_alone_can_be_checked(tmp_path: Path, pg_url: str) -> None:
    assert check_schema(device(tmp_path), None).checked == ("device",)
    assert check_schema(None, server(pg_url)).checked == ("server",)


# --- the app's historical crisis ---------------------------------------------------------


def test_the_apps_plaintext_server_table_is_named_for_what_it_is(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "CREATE TABLE notes (id text PRIMARY KEY, title text, body text, note_type int)"
        )
    report = check_schema(None, pg_url)
    assert not report.ok
    messages = {(m.kind, m.column): m.message for m in report.mismatches if m.table == "notes"}
    assert messages[(K.PLAINTEXT_SECRET, "title")] == (
        "notes.title: secret field stored as plaintext on the server "
        '(found text column "title", expected bytea "title_enc")'
    )
    assert messages[(K.PLAINTEXT_SECRET, "body")] == (
        "notes.body: secret field stored as plaintext on the server "
        '(found text column "body", expected it sealed inside bytea "props_enc")'
    )
    assert messages[(K.TYPE, "id")] == (
        "notes.id: type differs on the server (found text, expected uuid)"
    )
    assert messages[(K.TYPE, "note_type")] == (
        "notes.note_type: enum stored as integer, not as its member names on the server "
        "(found integer, expected text holding note, template)"
    )
    assert (K.MISSING_COLUMN, "props_enc") in messages
    assert (K.MISSING_COLUMN, "title_enc") not in messages  # said once, by the plaintext line
    assert (K.PRIMARY_KEY, None) in messages and (K.ROW_SECURITY, None) in messages
    with pytest.raises(SchemaCheckError, match="schema error"):
        report.raise_for_errors()


# --- device side: one test per kind ---------------------------------------------------------


def test_device_missing_table(tmp_path: Path) -> None:
    m = only(check_schema(device(tmp_path, "DROP TABLE attachments"), None), K.MISSING_TABLE)
    assert m.message == "attachments: table missing on the device"


def test_device_extra_table_is_a_warning(tmp_path: Path) -> None:
    path = device(tmp_path, "CREATE TABLE local_notes (id TEXT)")
    report = check_schema(path, None)
    m = only(report, K.EXTRA_TABLE)
    assert m.table == "local_notes" and m.severity == "warning" and report.ok


def test_device_missing_column(tmp_path: Path) -> None:
    report = check_schema(device(tmp_path, "ALTER TABLE folders DROP COLUMN icon"), None)
    m = only(report, K.MISSING_COLUMN)
    assert (m.table, m.column, m.expected) == ("folders", "icon", "TEXT") and not report.ok


def test_device_extra_column(tmp_path: Path) -> None:
    path = device(tmp_path, "ALTER TABLE notes ADD COLUMN title_enc BLOB")
    m = only(check_schema(path, None), K.EXTRA_COLUMN)
    assert (m.table, m.column) == ("notes", "title_enc")


def test_device_type_mismatch(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "folders", '"icon" TEXT', '"icon" INTEGER')
    m = only(check_schema(path, None), K.TYPE)
    assert m.message == "folders.icon: type differs on the device (found INTEGER, expected TEXT)"


def test_device_nullability_mismatch(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "folders", '"color" TEXT', '"color" TEXT NOT NULL')
    m = only(check_schema(path, None), K.NULLABILITY)
    assert (m.column, m.found, m.expected) == ("color", "NOT NULL", "NULL allowed")


def test_device_enum_codes_mismatch(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "notes", '"note_type" IN (0, 1)', '"note_type" IN (0, 1, 2)')
    m = only(check_schema(path, None), K.ENUM_VALUES)
    assert (m.table, m.column, m.found, m.expected) == ("notes", "note_type", "0, 1, 2", "0, 1")


def test_device_enum_without_check(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "tasks", ' CHECK ("status" IN (0, 1, 2, 3))', "")
    m = only(check_schema(path, None), K.ENUM_VALUES)
    assert (m.column, m.found) == ("status", "none")


def test_device_primary_key_mismatch(tmp_path: Path) -> None:
    path = device_edited(
        tmp_path, "folders", '"id" TEXT PRIMARY KEY NOT NULL', '"id" TEXT NOT NULL'
    )
    m = only(check_schema(path, None), K.PRIMARY_KEY)
    assert (m.table, m.found, m.expected) == ("folders", "()", "(id)")


def test_device_unique_constraint_missing(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "note_tags", ',\n    UNIQUE ("note_id", "tag")', "")
    m = only(check_schema(path, None), K.UNIQUE)
    assert (m.table, m.expected) == ("note_tags", "(note_id, tag)")


def test_device_foreign_key_mismatch(tmp_path: Path) -> None:
    old = 'REFERENCES "notes" ("id") ON DELETE CASCADE'
    path = device_edited(tmp_path, "note_tags", old, 'REFERENCES "notes" ("id")')
    m = only(check_schema(path, None), K.FOREIGN_KEY)
    assert m.found == "(note_id) -> notes (id) ON DELETE NO ACTION"
    assert m.expected == "(note_id) -> notes (id) ON DELETE CASCADE"


def test_device_missing_index(tmp_path: Path) -> None:
    path = device(tmp_path, "DROP INDEX ix_notes_is_pinned_updated_at")
    m = only(check_schema(path, None), K.MISSING_INDEX)
    assert "ix_notes_is_pinned_updated_at missing" in m.message
    assert "serves: list recent, pinned first" in m.message


def test_device_extra_index_is_a_warning(tmp_path: Path) -> None:
    report = check_schema(device(tmp_path, "CREATE INDEX ix_by_title ON notes (title)"), None)
    m = only(report, K.EXTRA_INDEX)
    assert m.severity == "warning" and "ix_by_title" in m.message and report.ok


def test_device_index_definition_mismatch(tmp_path: Path) -> None:
    path = device(
        tmp_path,
        "DROP INDEX ix_notes_updated_at",
        "CREATE INDEX ix_notes_updated_at ON notes (updated_at) WHERE deleted = 0",
    )
    m = only(check_schema(path, None), K.INDEX_DEFINITION)
    assert m.found == "(updated_at) WHERE deleted = 0"
    assert m.expected == '(updated_at) WHERE "deleted" = 1'


def test_device_table_not_strict(tmp_path: Path) -> None:
    path = device_edited(tmp_path, "templates", ") STRICT", ")")
    m = only(check_schema(path, None), K.NOT_STRICT)
    assert m.table == "templates"


def test_device_missing_search_trigger(tmp_path: Path) -> None:
    m = only(check_schema(device(tmp_path, "DROP TRIGGER notes_fts_au"), None), K.MISSING_TRIGGER)
    assert "notes_fts_au" in m.message


def test_device_made_by_another_model(tmp_path: Path) -> None:
    path = device(
        tmp_path, "UPDATE duru_meta SET value = 'feedface' WHERE key = 'model_fingerprint'"
    )
    m = only(check_schema(path, None), K.FINGERPRINT)
    assert (m.found, m.expected) == ("feedface", MODEL_FINGERPRINT)


def test_device_file_missing_or_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        check_schema(tmp_path / "absent.db", None)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(CorruptDatabase):
        check_schema(junk, None)


# --- server side: one test per kind ----------------------------------------------------------


def _check(pg_url: str, *sql: str) -> SchemaReport:
    return check_schema(None, server(pg_url, *sql))


def test_server_missing_table(pg_url: str) -> None:
    m = only(_check(pg_url, "DROP TABLE attachments"), K.MISSING_TABLE)
    assert m.message == "attachments: table missing on the server"


def test_server_extra_table_is_a_warning(pg_url: str) -> None:
    report = _check(pg_url, "CREATE TABLE audit (x int)")
    assert only(report, K.EXTRA_TABLE).severity == "warning" and report.ok


def test_server_missing_column(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE folders DROP COLUMN icon"), K.MISSING_COLUMN)
    assert m.message == "folders.icon: column missing on the server (expected text)"


def test_server_extra_column(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE folders ADD COLUMN path text"), K.EXTRA_COLUMN)
    assert (m.table, m.column) == ("folders", "path")


def test_server_type_mismatch(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE tasks ALTER COLUMN position TYPE integer"), K.TYPE)
    assert (
        m.message == "tasks.position: type differs on the server (found integer, expected bigint)"
    )


def test_server_ciphertext_column_not_bytea(pg_url: str) -> None:
    sql = "ALTER TABLE folders ALTER COLUMN name_enc TYPE text USING encode(name_enc, 'base64')"
    m = only(_check(pg_url, sql), K.TYPE)
    assert m.message == (
        "folders.name_enc: ciphertext column is not bytea on the server"
        " (found text, expected bytea)"
    )


def test_server_nullability_mismatch(pg_url: str) -> None:
    report = _check(
        pg_url,
        "ALTER TABLE folders ALTER COLUMN color SET NOT NULL",
        "ALTER TABLE notes ALTER COLUMN title_enc DROP NOT NULL",
    )
    found = {(m.table, m.column, m.found) for m in report.mismatches}
    assert {m.kind for m in report.mismatches} == {K.NULLABILITY}
    assert found == {("folders", "color", "NOT NULL"), ("notes", "title_enc", "NULL allowed")}


def test_server_enum_values_mismatch(pg_url: str) -> None:
    report = _check(
        pg_url,
        "ALTER TABLE reminders DROP CONSTRAINT reminders_type_check",
        "ALTER TABLE reminders ADD CONSTRAINT reminders_type_check"
        " CHECK (type IN ('time', 'location'))",
    )
    m = only(report, K.ENUM_VALUES)
    assert (m.column, m.found, m.expected) == (
        "type",
        "time, location",
        "time, location, recurring",
    )


def test_server_enum_without_check(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE tasks DROP CONSTRAINT tasks_status_check"), K.ENUM_VALUES)
    assert (m.column, m.found) == ("status", "none")


def test_server_sealed_field_stored_as_plaintext(pg_url: str) -> None:
    report = _check(
        pg_url,
        "ALTER TABLE notes RENAME COLUMN title_enc TO title",
        "ALTER TABLE notes ALTER COLUMN title TYPE text USING encode(title, 'escape')",
    )
    m = only(report, K.PLAINTEXT_SECRET)
    assert m.message == (
        "notes.title: secret field stored as plaintext on the server "
        '(found text column "title", expected bytea "title_enc")'
    )


def test_server_packed_field_present_at_all(pg_url: str) -> None:
    report = _check(pg_url, "ALTER TABLE notes ADD COLUMN body bytea")
    m = only(report, K.PLAINTEXT_SECRET)
    assert (m.column, m.found) == ("body", 'bytea column "body"')


def test_server_tag_stored_in_the_clear_next_to_its_blind_index(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE note_tags ADD COLUMN tag text"), K.PLAINTEXT_SECRET)
    assert m.expected == 'bytea "tag_enc"'


def test_server_primary_key_without_user_id(pg_url: str) -> None:
    report = _check(
        pg_url,
        "ALTER TABLE templates DROP CONSTRAINT templates_pkey",
        "ALTER TABLE templates ADD CONSTRAINT templates_pkey PRIMARY KEY (id)",
        "COMMENT ON INDEX templates_pkey IS 'serves: by id'",
    )
    kinds = sorted(m.kind for m in report.mismatches)
    assert kinds == sorted([K.PRIMARY_KEY, K.INDEX_DEFINITION])
    pk = report.of_kind(K.PRIMARY_KEY)[0]
    assert (pk.found, pk.expected) == ("(id)", "(user_id, id)")


def test_server_missing_index(pg_url: str) -> None:
    m = only(_check(pg_url, "DROP INDEX ix_note_tags_tag_hmac"), K.MISSING_INDEX)
    assert m.expected == "hash (tag_hmac)" and "equality on its blind index" in m.message


def test_server_extra_index_is_a_warning(pg_url: str) -> None:
    report = _check(pg_url, "CREATE INDEX ix_notes_created ON notes (created_at)")
    assert only(report, K.EXTRA_INDEX).severity == "warning" and report.ok


def test_server_index_definition_mismatch(pg_url: str) -> None:
    report = _check(
        pg_url,
        "DROP INDEX ix_notes_user_id_change_seq",
        "CREATE INDEX ix_notes_user_id_change_seq ON notes (change_seq)",
        "DROP INDEX ix_notes_is_pinned_updated_at",
        "CREATE INDEX ix_notes_is_pinned_updated_at ON notes (user_id, is_pinned, updated_at)"
        " WHERE deleted = true",
    )
    found = {m.message.split(":")[1].strip().split(" ")[1]: m for m in report.mismatches}
    assert {m.kind for m in report.mismatches} == {K.INDEX_DEFINITION}
    assert found["ix_notes_user_id_change_seq"].found == "btree (change_seq)"
    assert found["ix_notes_is_pinned_updated_at"].expected == (
        "btree (user_id, is_pinned, updated_at) WHERE (deleted = false)"
    )


def test_server_set_null_that_would_clear_user_id(pg_url: str) -> None:
    report = _check(
        pg_url,
        "ALTER TABLE note_links DROP CONSTRAINT fk_note_links_target_id",
        "ALTER TABLE note_links ADD CONSTRAINT fk_note_links_target_id FOREIGN KEY"
        " (user_id, target_id) REFERENCES notes (user_id, id) ON DELETE SET NULL",
    )
    m = only(report, K.FOREIGN_KEY)
    assert m.found == "(user_id, target_id) -> notes (user_id, id) ON DELETE SET NULL"
    assert (
        m.expected == "(user_id, target_id) -> notes (user_id, id) ON DELETE SET NULL (target_id)"
    )


def test_server_foreign_key_missing(pg_url: str) -> None:
    m = only(_check(pg_url, "ALTER TABLE tasks DROP CONSTRAINT fk_tasks_note_id"), K.FOREIGN_KEY)
    assert m.message.startswith("tasks.note_id: foreign key missing on the server")


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("ALTER TABLE notes NO FORCE ROW LEVEL SECURITY", "is not forced"),
        ("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY", "is not enabled"),
        ("DROP POLICY duru_owner_only ON folders", "no policy limits rows"),
        ("CREATE POLICY everyone ON reminders USING (true)", "everyone may widen access"),
    ],
)
def test_server_row_level_security(pg_url: str, sql: str, needle: str) -> None:
    m = only(_check(pg_url, sql), K.ROW_SECURITY)
    assert needle in m.message


def test_server_missing_function(pg_url: str) -> None:
    sql = "DROP FUNCTION duru_reserve_change_seqs(uuid, bigint)"
    m = only(_check(pg_url, sql), K.MISSING_FUNCTION)
    assert "duru_reserve_change_seqs" in m.message


def test_server_made_by_another_schema(pg_url: str) -> None:
    sql = "UPDATE duru_meta SET value = '0' WHERE key = 'schema_fingerprint'"
    m = only(_check(pg_url, sql), K.FINGERPRINT)
    assert (m.column, m.found) == ("schema_fingerprint", "0")


def test_unreachable_server_is_server_unavailable(tmp_path: Path) -> None:
    url = f"postgresql://nobody:secret@/duru?host={tmp_path}&port=1&connect_timeout=2"
    with pytest.raises(ServerUnavailable) as info:
        check_schema(None, url)
    assert "secret" not in str(info.value)


def test_report_as_json_and_text(tmp_path: Path, pg_url: str) -> None:
    report = check_schema(
        device(tmp_path, "DROP INDEX ix_notes_updated_at"),
        server(pg_url, "ALTER TABLE notes ADD COLUMN body text"),
    )
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["errors"] == 2
    assert {(m["side"], m["kind"]) for m in data["mismatches"]} == {
        ("device", "missing_index"),
        ("server", "plaintext_secret"),
    }
    assert set(data["mismatches"][0]) == {
        "side",
        "kind",
        "severity",
        "table",
        "column",
        "expected",
        "found",
        "message",
    }
    text = report.render_text()
    assert "device" in text and "1 error(s), 0 warning(s)" in text
    assert "  error   notes.body: secret field stored as plaintext on the server" in text
    assert text.endswith(f"NOT compatible with model {MODEL_FINGERPRINT}")


def test_the_migration_engines_own_tables_are_not_reported(tmp_path: Path) -> None:
    from duru.local import Database
    from duru.schemacheck import check_device_file

    path = tmp_path / "d.sqlite"
    with Database.open(path) as db:
        db.conn.execute("CREATE TABLE duru_migration_audit (id INTEGER PRIMARY KEY)")
        db.conn.execute("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    found = {(m.kind, m.table) for m in check_device_file(path)}
    assert ("extra_table", "stray") in found
    assert not any(table == "duru_migration_audit" for _, table in found)
