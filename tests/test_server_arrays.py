"""The array literals the server sends as one parameter instead of a list psycopg dumps
item by item: they round-trip through a real PostgreSQL, and refuse anything that could
change the array's shape."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duru.errors import UsageError
from duru.model.values import uuid_text
from duru.server.tree import int_array, uuid_array, word_array
from duru.sync.protocol import canonical_id


def test_the_literals_round_trip_through_postgresql(pg_conn: psycopg.Connection[Any]) -> None:
    ids = [uuid.uuid4() for _ in range(50)]
    got = pg_conn.execute(
        "SELECT %s::uuid[], %s::text[], %s::bigint[], %s::uuid[]",
        (
            uuid_array(ids),
            word_array(["note", "note_tag", "applied"]),
            int_array([0, -1, 2**63 - 1, -(2**63)]),
            uuid_array([]),
        ),
    ).fetchone()
    assert got == (ids, ["note", "note_tag", "applied"], [0, -1, 2**63 - 1, -(2**63)], [])
    # Canonical text and uuid objects mix.
    mixed = [str(ids[0]), ids[1]]
    assert pg_conn.execute("SELECT %s::uuid[]", (uuid_array(mixed),)).fetchone() == (ids[:2],)


@pytest.mark.parametrize(
    "bad",
    [
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",  # upper case: not the canonical spelling
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12",
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"',
        "",
        "NULL",
    ],
)
def test_a_uuid_array_refuses_anything_but_canonical_uuids(bad: str) -> None:
    with pytest.raises(ValueError, match="array literal"):
        uuid_array([str(uuid.uuid4()), bad])


@pytest.mark.parametrize("bad", ["Note", "note tag", "a,b", "x}", '"', "", "NULL", "ノート"])
def test_a_word_array_refuses_anything_but_lower_case_names(bad: str) -> None:
    with pytest.raises(ValueError, match="array literal"):
        word_array(["note", bad])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_no_text_but_a_canonical_uuid_makes_a_uuid_array(text: str) -> None:
    try:
        literal = uuid_array([text])
    except ValueError:
        return
    assert literal == "{" + str(uuid.UUID(text)) + "}"


def test_canonical_id_keeps_canonical_ids_and_normalises_the_rest() -> None:
    u = uuid.uuid4()
    assert canonical_id(str(u), "op_id") == str(u)
    assert canonical_id(str(u).upper(), "op_id") == str(u)
    assert canonical_id("{" + str(u) + "}", "op_id") == str(u)
    assert canonical_id(u.hex, "op_id") == str(u)
    with pytest.raises(UsageError, match="op_id"):
        canonical_id(str(u) + "0", "op_id")
    with pytest.raises(UsageError, match="op_id"):
        canonical_id(42, "op_id")


def test_uuid_text_reads_uuid_spellings_only() -> None:
    """One reading of ids for the model and the protocol: the spellings of a uuid, never
    what uuid.UUID's int() would also take (and turn into another uuid)."""
    u = uuid.uuid4()
    hexed = u.hex
    for spelling in (str(u), str(u).upper(), "{" + str(u) + "}", hexed, "urn:uuid:" + str(u)):
        assert uuid_text(spelling) == str(u)
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(c)] if c.isdigit() else c for c in str(u))
    for lenient in (
        " " + hexed[:31],
        "+" + hexed[:31],
        hexed[:4] + "_" + hexed[5:],
        hexed + "\n",
        arabic,
        "{" + str(u),
        str(u) + "}",
    ):
        assert uuid_text(lenient) is None, lenient
