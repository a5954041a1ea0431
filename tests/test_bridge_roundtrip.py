"""Property: the bridge never loses a value. to_local(to_remote(row)) == row, for every
entity, over rows generated from the model, in memory and through a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import TupleRow

from duru.bridge import MAX_EPOCH_MS, MIN_EPOCH_MS, codec_for
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.model import ENTITIES, Entity, Field, Kind, Row, new_id
from duru.remote.schema import apply_server_schema

BIG = 200_000
ANY_CHAR = st.characters(exclude_categories=("Cs",))  # SQLite text cannot hold lone surrogates
PLAIN_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
ASTRAL = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=("Cs",))


def _texts(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    big = st.builds(
        lambda unit, extra: (unit * (BIG // len(unit) + 1))[: BIG + extra],
        st.text(chars, min_size=1, max_size=12),
        st.integers(0, 64),
    )
    return st.one_of(
        st.just(""), st.text(chars, max_size=40), st.text(ASTRAL, min_size=1, max_size=8), big
    )


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(ANY_CHAR, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(ANY_CHAR, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Device JSON is compact text, but a legacy import may have kept other spellings: secret
# JSON must come back as the very same text either way.
_JSON_TEXT = st.one_of(
    _JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))),
    _JSON_VALUES.map(lambda v: json.dumps(v, indent=1)),
)
_TIMESTAMPS = st.one_of(
    st.sampled_from([MIN_EPOCH_MS, MAX_EPOCH_MS, -1, 0, 1]),
    st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS),
)


def field_values(f: Field) -> st.SearchStrategy[Any]:
    """Stored values for ``f``, derived from its kind, nullability and secrecy."""
    match f.kind:
        case Kind.UUID:
            out: st.SearchStrategy[Any] = st.uuids().map(str)
        case Kind.TEXT:
            out = _texts(ANY_CHAR if f.secret else PLAIN_CHAR)
        case Kind.INT:
            out = st.integers(-(2**63), 2**63 - 1)
        case Kind.FLOAT:
            out = st.floats(allow_nan=False, allow_infinity=False)
        case Kind.BOOL:
            out = st.sampled_from([0, 1])
        case Kind.TIMESTAMP:
            out = _TIMESTAMPS
        case Kind.JSON:
            out = _JSON_TEXT
        case Kind.ENUM:
            out = st.sampled_from(f.enum.codes)
    return st.one_of(st.none(), out) if f.nullable else out


def rows(e: Entity) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries({f.name: field_values(f) for f in e.fields})


def exact(row: Row) -> dict[str, Any]:
    """The row with each value tagged by type, floats by their bits (-0.0 != 0.0 here)."""
    return {k: (type(v).__name__, v.hex() if isinstance(v, float) else v) for k, v in row.items()}


@pytest.fixture(scope="module")
def keys() -> AccountKeys:
    return new_account("pass phrase", new_id(), KdfParams.for_tests())[0]


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@SETTINGS
@given(data=st.data())
def test_every_row_round_trips_in_memory(ent: Entity, keys: AccountKeys, data: Any) -> None:
    row = data.draw(rows(ent))
    codec = codec_for(ent)
    remote = codec.to_remote(row, keys, keys.user_id)
    assert exact(codec.to_local(remote, keys)) == exact(row)


# --- through PostgreSQL: what psycopg sends and gets back ---------------------------------


@pytest.fixture(scope="module")
def server(pg_databases: Any) -> Iterator[psycopg.Connection[TupleRow]]:
    with pg_databases.fresh("duru_test_bridge") as url, psycopg.connect(url) as conn:
        apply_server_schema(conn)
        # psycopg builds datetimes in the session's time zone; years 1 and 9999 only fit in UTC.
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        yield conn


def _insert_returning(ent: Entity) -> sql.Composed:
    cols = codec_for(ent).columns
    return sql.SQL("INSERT INTO {} ({}, change_seq) VALUES ({}, 1) RETURNING {}").format(
        sql.Identifier(ent.table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
    )


@pytest.mark.pg_superuser_only(
    "rows without their parents need session_replication_role = replica; this test is about"
    " values, row level security and keys have their own tests"
)
@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@settings(SETTINGS, max_examples=20)
@given(data=st.data())
def test_every_row_round_trips_through_postgresql(
    ent: Entity, keys: AccountKeys, server: psycopg.Connection[TupleRow], data: Any
) -> None:
    row = data.draw(rows(ent))
    codec = codec_for(ent)
    remote = codec.to_remote(row, keys, keys.user_id)
    with server.transaction(force_rollback=True):
        # Generated rows reference parents that do not exist; this test is about values,
        # so foreign key triggers are off for its transaction (the schema tests cover keys).
        server.execute("SET LOCAL session_replication_role = replica")
        cur = server.execute(_insert_returning(ent), [remote[c] for c in codec.columns])
        stored = cur.fetchone()
    assert stored is not None
    back = codec.to_local(dict(zip(codec.columns, stored, strict=True)), keys)
    assert exact(back) == exact(row)
