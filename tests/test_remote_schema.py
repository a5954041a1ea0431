"""The server DDL: derived from the model, applies cleanly, idempotent, keys, RLS, indexes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from duru.errors import SchemaMismatch
from duru.model import ENTITIES, MODEL_FINGERPRINT, PROPS_COLUMN, Kind
from duru.remote.introspect import introspect
from duru.remote.layout import (
    BYTEA,
    CHANGE_SEQ,
    SERVER_TYPES,
    USER_ID,
    Role,
    server_columns,
    server_table,
    server_tables,
)
from duru.remote.schema import (
    SCHEMA_FINGERPRINT,
    SERVER_SCHEMA_VERSION,
    USER_SETTING,
    apply_server_schema,
    read_meta,
    server_ddl,
)
from duru.sync.server_account import set_user

if TYPE_CHECKING:
    from conftest import PgDatabases

Conn = psycopg.Connection[TupleRow]


# --- the layout, derived from the model (no server needed) -------------------------------


def test_no_secret_field_has_a_plaintext_column() -> None:
    for e in ENTITIES:
        names = {c.name for c in server_columns(e)}
        for f in e.secret_fields:
            assert f.name not in names, f"{e.table}.{f.name} would be plaintext"
            if f.remote:
                col = next(c for c in server_columns(e) if c.name == f.remote)
                assert col.type == BYTEA and col.role is Role.SEALED
        has_props = PROPS_COLUMN in names
        assert has_props == bool(e.packed_fields), e.table


def test_plain_fields_keep_their_names_and_take_server_types() -> None:
    for e in ENTITIES:
        cols = {c.name: c for c in server_columns(e)}
        assert next(iter(cols)) == USER_ID
        for f in e.fields:
            if f.secret:
                continue
            assert cols[f.name].type == SERVER_TYPES[f.kind]
            assert cols[f.name].nullable == f.nullable
            if f.kind is Kind.ENUM:
                assert cols[f.name].enum == f.enum.names


def test_keys_and_indexes_lead_with_user_id() -> None:
    for e in ENTITIES:
        table = server_table(e)
        assert table.primary_key.columns == (USER_ID, e.key)
        for ix in table.indexes:
            assert ix.query, ix.name
            if ix.method == "btree":
                assert ix.columns[0] == USER_ID, ix.name
        for fk in table.foreign_keys:
            assert fk.columns[0] == USER_ID and fk.ref_columns[0] == USER_ID
        indexed = {ix.columns[:2] for ix in table.indexes if not ix.where}
        for f in e.foreign_keys:
            assert (USER_ID, f.name) in indexed, f"{e.table}.{f.name} has no child index"
    names = [ix.name for t in server_tables() for ix in t.indexes]
    assert len(names) == len(set(names)), "index names are per schema in PostgreSQL"


def test_model_indexes_for_the_server_are_rendered_with_user_id_first() -> None:
    for e in ENTITIES:
        table = server_table(e)
        by_name = {ix.name: ix for ix in table.indexes}
        for ix in e.indexes:
            name = e.index_name(ix)
            if ix.side == "local":
                assert name not in by_name
                continue
            assert by_name[name].columns == (USER_ID, *ix.columns)
            assert by_name[name].query == ix.query


def test_every_index_statement_carries_its_query_as_a_comment() -> None:
    ddl = server_ddl()
    creates = [s for s in ddl if "CREATE INDEX" in s or "CREATE UNIQUE INDEX" in s]
    assert creates
    for stmt in creates:
        assert stmt.startswith("-- serves: "), stmt
    names = [ix.name for t in server_tables() for ix in t.indexes]
    for name in names:
        assert any(s.startswith(f"COMMENT ON INDEX {name} IS 'serves: ") for s in ddl), name


# --- applying it -----------------------------------------------------------------------


def _snapshot(conn: Conn) -> Any:
    live = introspect(conn)
    return {name: repr(t) for name, t in live.tables.items()}, sorted(live.functions)


def test_ddl_applies_on_a_fresh_database_and_apply_is_idempotent(pg_conn: Conn) -> None:
    assert apply_server_schema(pg_conn) is True
    pg_conn.commit()
    first = _snapshot(pg_conn)
    assert set(first[0]) == {t.name for t in server_tables()}
    assert apply_server_schema(pg_conn) is False
    pg_conn.commit()
    assert _snapshot(pg_conn) == first
    meta = read_meta(pg_conn)
    assert meta == {
        "schema_version": str(SERVER_SCHEMA_VERSION),
        "model_fingerprint": MODEL_FINGERPRINT,
        "schema_fingerprint": SCHEMA_FINGERPRINT,
    }


def test_the_raw_ddl_is_not_idempotent_on_purpose(pg_conn: Conn) -> None:
    # CREATE without IF NOT EXISTS: a table of the same name is an error, never kept silently.
    apply_server_schema(pg_conn)
    with pytest.raises(psycopg.errors.DuplicateTable):
        pg_conn.execute(server_ddl()[0])


def test_apply_refuses_a_database_made_by_another_fingerprint(pg_conn: Conn) -> None:
    apply_server_schema(pg_conn)
    pg_conn.execute("UPDATE duru_meta SET value = 'feedface' WHERE key = 'model_fingerprint'")
    pg_conn.commit()
    with pytest.raises(SchemaMismatch, match="made by model feedface"):
        apply_server_schema(pg_conn)


def test_apply_refuses_tables_it_did_not_make(pg_conn: Conn) -> None:
    pg_conn.execute("CREATE TABLE notes (id text PRIMARY KEY, title text, body text)")
    pg_conn.commit()
    with pytest.raises(SchemaMismatch, match=r"tables duru did not make \(notes\)"):
        apply_server_schema(pg_conn)
    assert read_meta(pg_conn) is None


def test_concurrent_applies_create_the_schema_once(pg_url: str) -> None:
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def apply() -> None:
        try:
            with psycopg.connect(pg_url) as conn:
                barrier.wait()
                results.append(apply_server_schema(conn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == [False, False, True]


def test_every_index_in_the_database_has_a_comment_naming_its_query(pg_conn: Conn) -> None:
    apply_server_schema(pg_conn)
    live = introspect(pg_conn)
    for table in live.tables.values():
        for ix in table.indexes.values():
            assert ix.comment and ix.comment.startswith("serves: "), ix.name


# --- data rules the schema enforces --------------------------------------------------------


def _account(conn: Conn, user: uuid.UUID) -> None:
    set_user(conn, str(user))  # row level security: each row is written as its user
    conn.execute(
        "INSERT INTO accounts (user_id, salt, kdf_params, wrapped_master_key, auth_verifier)"
        " VALUES (%s, '\\x00', '{}', '\\x00', 'v')",
        (user,),
    )


def _note(
    conn: Conn, user: uuid.UUID, note: uuid.UUID, seq: int = 1, *, as_user: bool = True
) -> None:
    """A note of ``user``, written as that user (``as_user=False``: as the session's user)."""
    if as_user:
        set_user(conn, str(user))
    conn.execute(
        "INSERT INTO notes (user_id, id, title_enc, note_type, is_pinned, deleted, created_at,"
        " updated_at, version, props_enc, row_mac, change_seq)"
        " VALUES (%s, %s, '\\x01', 'note', false, false, now(), now(), 0, '\\x01', '\\x01', %s)",
        (user, note, seq),
    )


def _link(conn: Conn, user: uuid.UUID, source: uuid.UUID, target: uuid.UUID) -> uuid.UUID:
    link = uuid.uuid4()
    set_user(conn, str(user))
    conn.execute(
        "INSERT INTO note_links (user_id, id, source_id, target_id, created_at, updated_at,"
        " version, props_enc, row_mac, change_seq)"
        " VALUES (%s, %s, %s, %s, now(), now(), 0, '\\x01', '\\x01', 1)",
        (user, link, source, target),
    )
    return link


def test_enum_check_refuses_a_name_outside_the_model(pg_conn: Conn) -> None:
    apply_server_schema(pg_conn)
    user = uuid.uuid4()
    _account(pg_conn, user)
    with pytest.raises(psycopg.errors.CheckViolation, match="notes_note_type_check"):
        pg_conn.execute(
            "INSERT INTO notes (user_id, id, title_enc, note_type, is_pinned, deleted,"
            " created_at, updated_at, version, props_enc, row_mac, change_seq)"
            " VALUES (%s, %s, '\\x01', 'memo', false, false, now(), now(), 0, '\\x01', '\\x01', 1)",
            (user, uuid.uuid4()),
        )


def test_foreign_keys_stay_within_one_user(pg_conn: Conn) -> None:
    apply_server_schema(pg_conn)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    _account(pg_conn, alice)
    _account(pg_conn, bob)
    note = uuid.uuid4()
    _note(pg_conn, alice, note)
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="fk_note_links_source_id"):
        _link(pg_conn, bob, note, note)


def test_deleting_a_note_cascades_and_sets_only_the_target_null(pg_conn: Conn) -> None:
    apply_server_schema(pg_conn)
    user = uuid.uuid4()
    _account(pg_conn, user)
    a, b = uuid.uuid4(), uuid.uuid4()
    _note(pg_conn, user, a)
    _note(pg_conn, user, b, 2)
    from_a = _link(pg_conn, user, a, b)
    to_a = _link(pg_conn, user, b, a)
    pg_conn.execute("DELETE FROM notes WHERE user_id = %s AND id = %s", (user, a))
    rows = pg_conn.execute("SELECT id, user_id, target_id FROM note_links").fetchall()
    assert rows == [(to_a, user, None)]  # user_id kept: SET NULL (target_id) only
    assert from_a not in [r[0] for r in rows]
    pg_conn.execute("DELETE FROM accounts WHERE user_id = %s", (user,))
    assert pg_conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)


def test_reserving_change_sequence_numbers_serializes_one_users_writers(pg_url: str) -> None:
    with psycopg.connect(pg_url) as setup:
        apply_server_schema(setup)
        user = uuid.uuid4()
        _account(setup, user)
    reserve = "SELECT duru_reserve_change_seqs(%s, %s)"
    with psycopg.connect(pg_url) as first, psycopg.connect(pg_url) as second:
        assert first.execute(reserve, (user, 3)).fetchone() == (1,)
        second.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            second.execute(reserve, (user, 2))
        second.rollback()
        first.commit()
        assert second.execute(reserve, (user, 2)).fetchone() == (4,)
        second.commit()
        assert first.execute(reserve, (uuid.uuid4(), 1)).fetchone() == (None,)


def test_row_level_security_shows_a_session_only_its_own_rows(pg_url: str) -> None:
    role = f"duru_app_{uuid.uuid4().hex[:8]}"
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(pg_url) as admin:  # the database's owner
        apply_server_schema(admin)
        for user in (alice, bob):
            _account(admin, user)
            _note(admin, user, uuid.uuid4())
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(sql.Identifier(role))
        )
    try:
        params = conninfo_to_dict(pg_url)
        params.pop("password", None)
        with psycopg.connect(make_conninfo("", **{**params, "user": role})) as app:
            assert app.execute("SELECT count(*) FROM notes").fetchone() == (0,)
            app.execute("SELECT set_config('duru.user_id', %s, false)", (str(alice),))
            owners = app.execute("SELECT DISTINCT user_id FROM notes").fetchall()
            assert owners == [(alice,)]
            assert app.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                _note(app, bob, uuid.uuid4(), as_user=False)
            app.rollback()
            app.execute("SELECT set_config('duru.user_id', %s, false)", (str(alice),))
            assert app.execute("DELETE FROM notes WHERE user_id = %s", (bob,)).rowcount == 0
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # Not DROP OWNED BY: the role has only these grants, and a role that is not a
            # superuser may not drop another's objects.
            admin.execute(
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(
                    sql.Identifier(role)
                )
            )
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- access paths: EXPLAIN proves each query uses its index ------------------------------

USERS = 50
NOTES_PER_USER = 400


@pytest.fixture(scope="module")
def filled(pg_databases: PgDatabases) -> Iterator[tuple[Conn, list[uuid.UUID]]]:
    """A database with 50 users x 400 notes, 2 tags, 1 task, 1 link, 1 reminder each.

    Yields a connection as the owner, which row level security binds: a test sets the user
    its queries are for (``_as_user``), as the server does.
    """
    with pg_databases.fresh("duru_test_explain") as url, psycopg.connect(url) as conn:
        apply_server_schema(conn)
        conn.commit()
        # Fifty users' rows in one statement each: loaded past row level security.
        with psycopg.connect(pg_databases.inspect(url)) as loader:
            _fill(loader)
        conn.autocommit = True
        conn.execute("ANALYZE")
        users = [r[0] for r in conn.execute("SELECT user_id FROM accounts ORDER BY 1")]
        yield conn, users


def _as_user(conn: Conn, user: uuid.UUID) -> None:
    """The session's user for row level security, as the sync server sets it."""
    conn.execute("SELECT set_config(%s, %s, false)", (USER_SETTING, str(user)))


def _fill(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO accounts (user_id, salt, kdf_params, wrapped_master_key, auth_verifier)"
        " SELECT gen_random_uuid(), '\\x00', '{}', '\\x00', 'v' FROM generate_series(1, %s)",
        (USERS,),
    )
    common = "now(), now(), 0"
    conn.execute(
        "INSERT INTO notes (user_id, id, title_enc, note_type, is_pinned, deleted, created_at,"
        " updated_at, version, props_enc, row_mac, change_seq)"
        " SELECT a.user_id, gen_random_uuid(),"
        f" '\\x01', 'note', i %% 10 = 0, i %% 7 = 0, {common}, '\\x01', '\\x01', i"
        " FROM accounts a, generate_series(1, %s) i",
        (NOTES_PER_USER,),
    )
    conn.execute(
        "INSERT INTO note_tags (user_id, id, note_id, tag_enc, tag_hmac, created_at, updated_at,"
        " version, row_mac, change_seq) SELECT n.user_id, gen_random_uuid(), n.id, '\\x01',"
        f" sha256(uuid_send(n.id) || int2send(t::int2)), {common}, '\\x01', n.change_seq * 2 + t"
        " FROM notes n, generate_series(0, 1) t"
    )
    conn.execute(
        "INSERT INTO tasks (user_id, id, note_id, content_enc, status, priority, position,"
        " deleted, created_at, updated_at, version, props_enc, row_mac, change_seq)"
        " SELECT user_id, gen_random_uuid(), id, '\\x01', 'open', 'low', 0, false,"
        f" {common}, '\\x01', '\\x01', change_seq FROM notes"
    )
    conn.execute(
        "INSERT INTO reminders (user_id, id, note_id, type, is_active, recurrence_pattern,"
        " recurrence_interval, snooze_count, trigger_count, created_at, updated_at, version,"
        " props_enc, row_mac, change_seq)"
        " SELECT user_id, gen_random_uuid(), id, 'time', true, 'none',"
        f" 1, 0, 0, {common}, '\\x01', '\\x01', change_seq FROM notes"
    )
    conn.execute(
        "INSERT INTO note_links (user_id, id, source_id, target_id, created_at, updated_at,"
        " version, props_enc, row_mac, change_seq) SELECT user_id, gen_random_uuid(), id, id,"
        f" {common}, '\\x01', '\\x01', change_seq FROM notes"
    )


def _indexes_used(conn: Conn, query: str, params: tuple[object, ...]) -> set[str]:
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query, params).fetchone()
    assert plan is not None
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0][0]["Plan"])
    return found


def _some(conn: Conn, query: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return tuple(row)


def test_pull_reads_a_users_changes_through_the_change_sequence_index(filled: Any) -> None:
    conn, users = filled
    _as_user(conn, users[3])
    for table in ("notes", "note_tags", "tasks", "reminders", "note_links"):
        query = (
            f"SELECT * FROM {table} WHERE user_id = %s AND {CHANGE_SEQ} > %s"
            f" ORDER BY {CHANGE_SEQ} LIMIT 100"
        )
        used = _indexes_used(conn, query, (users[3], 50))
        assert f"ix_{table}_user_id_change_seq" in used, (table, used)


def test_children_of_a_note_are_found_through_their_foreign_key_indexes(filled: Any) -> None:
    conn, users = filled
    _as_user(conn, users[7])
    user, note = _some(
        conn, "SELECT user_id, id FROM notes WHERE user_id = %s LIMIT 1", (users[7],)
    )
    by_note = "WHERE user_id = %s AND note_id = %s"
    cases = {
        f"SELECT * FROM note_tags {by_note}": "ix_note_tags_note_id",
        f"SELECT * FROM tasks {by_note} ORDER BY position": "ix_tasks_note_id_position",
        f"SELECT * FROM reminders {by_note}": "ix_reminders_note_id",
        "SELECT * FROM note_links WHERE user_id = %s AND source_id = %s": "ix_note_links_source_id",
        "SELECT * FROM note_links WHERE user_id = %s AND target_id = %s": "ix_note_links_target_id",
    }
    for query, index in cases.items():
        assert index in _indexes_used(conn, query, (user, note)), query


def test_notes_with_a_tag_are_found_through_the_blind_index_hash_index(filled: Any) -> None:
    conn, users = filled
    _as_user(conn, users[1])
    user, tag = _some(conn, "SELECT user_id, tag_hmac FROM note_tags OFFSET 777 LIMIT 1")
    query = "SELECT note_id FROM note_tags WHERE user_id = %s AND tag_hmac = %s"
    assert "ix_note_tags_tag_hmac" in _indexes_used(conn, query, (user, tag))
    assert conn.execute(query, (user, tag)).fetchall()


def test_list_recent_uses_the_partial_model_index(filled: Any) -> None:
    conn, users = filled
    _as_user(conn, users[11])
    query = (
        "SELECT id FROM notes WHERE user_id = %s AND deleted = false"
        " ORDER BY is_pinned DESC, updated_at DESC LIMIT 20"
    )
    assert "ix_notes_is_pinned_updated_at" in _indexes_used(conn, query, (users[11],))
