"""StagedUpsert(first_write=True): plain INSERT or direct COPY when the user has no rows yet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from duru.remote.layout import ServerColumn, ServerIndex, ServerTable
from duru.remote.schema import CURRENT_USER_SQL
from duru.sync.copy import StagedUpsert

_TABLE = ServerTable(
    "firsts",
    (
        ServerColumn("user_id", "uuid"),
        ServerColumn("id", "bigint"),
        ServerColumn("label", "text"),
    ),
    (ServerIndex("firsts_pkey", ("user_id", "id"), "test", constraint="PRIMARY KEY"),),
)
_COLUMNS = ("user_id", "id", "label")


@pytest.fixture
def firsts(pg_conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    check = f"user_id = {CURRENT_USER_SQL}"
    for stmt in (
        "CREATE TABLE firsts (user_id uuid, id bigint, label text NOT NULL CHECK (label <> ''),"
        " PRIMARY KEY (user_id, id))",
        "ALTER TABLE firsts ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE firsts FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY own ON firsts USING ({check}) WITH CHECK ({check})",
        "DROP ROLE IF EXISTS duru_test_writer",
        "CREATE ROLE duru_test_writer",
        "GRANT ALL ON firsts TO duru_test_writer",
    ):
        pg_conn.execute(stmt)
    pg_conn.commit()
    yield pg_conn
    pg_conn.rollback()
    pg_conn.execute("DROP TABLE firsts")
    pg_conn.execute("DROP ROLE duru_test_writer")
    pg_conn.commit()


def _as_user(conn: psycopg.Connection[Any], user: uuid.UUID) -> None:
    conn.execute("SELECT set_config('duru.user_id', %s, true)", (str(user),))


def _rows(user: uuid.UUID, ids: range, label: str) -> list[tuple[object, ...]]:
    return [(user, i, f"{label} {i}") for i in ids]


def _stage(conn: psycopg.Connection[Any]) -> StagedUpsert:
    stage = StagedUpsert(conn, _TABLE, _COLUMNS, first_write=True)
    stage.create()
    return stage


def test_a_superuser_copies_straight_in_then_upserts_once_rows_exist(
    firsts: psycopg.Connection[Any],
) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    with firsts.transaction():
        _as_user(firsts, other)
        assert _stage(firsts).write(_rows(other, range(5), "other")) == 5
    with firsts.transaction():
        _as_user(firsts, user)
        stage = _stage(firsts)
        assert stage.mode == "copy"  # the other user's rows do not count
        assert stage.write(_rows(user, range(10), "first")) == 10
        later = _stage(firsts)
        assert later.mode == "upsert"
        assert later.write(_rows(user, range(5, 15), "second")) == 10
    got = firsts.execute("SELECT label FROM firsts WHERE user_id = %s ORDER BY id", (user,))
    assert [r[0] for r in got] == [f"first {i}" for i in range(5)] + [
        f"second {i}" for i in range(5, 15)
    ]


def test_under_row_level_security_it_inserts_and_the_policy_still_holds(
    firsts: psycopg.Connection[Any],
) -> None:
    user = uuid.uuid4()
    with firsts.transaction():
        firsts.execute("SET LOCAL ROLE duru_test_writer")
        _as_user(firsts, user)
        stage = _stage(firsts)
        assert stage.mode == "insert"
        assert stage.write(_rows(user, range(7), "mine")) == 7
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        with firsts.transaction():
            firsts.execute("SET LOCAL ROLE duru_test_writer")
            _as_user(firsts, uuid.uuid4())
            _stage(firsts).write(_rows(user, range(100, 101), "not mine"))


@pytest.mark.parametrize("role", [None, "duru_test_writer"])
def test_constraints_are_checked_and_nothing_is_overwritten(
    firsts: psycopg.Connection[Any], role: str | None
) -> None:
    user = uuid.uuid4()
    with pytest.raises(psycopg.errors.CheckViolation):
        with firsts.transaction():
            if role:
                firsts.execute(f"SET LOCAL ROLE {role}")
            _as_user(firsts, user)
            _stage(firsts).write([(user, 1, "")])
    with pytest.raises(psycopg.errors.UniqueViolation):
        with firsts.transaction():
            if role:
                firsts.execute(f"SET LOCAL ROLE {role}")
            _as_user(firsts, user)
            stage = _stage(firsts)
            stage.write(_rows(user, range(3), "a"))
            stage.write(_rows(user, range(2, 4), "b"))  # chose its mode when the table was empty
    assert firsts.execute("SELECT count(*) FROM firsts").fetchone() == (0,)
