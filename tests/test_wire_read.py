"""The one-pass way a pulled row opens (``EntityCodec.from_wire``) gives exactly what the
general way gives (``decode_row``, then ``to_local``), and takes nothing the general way
refuses.

Rows are generated from the model (every entity), sealed with real keys and written as
the wire carries them; then one value at a time is swapped for something else a server
could send (other types, other spellings of a uuid or a time, bad base64, NUL, lone
surrogates, integers out of range, null). For each: if the one-pass way opens the row,
the general way opens it to the same device row; if it raises, the general way raises the
same error; if it declines (None), the caller takes the general way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bridge_roundtrip import exact, rows

from duru.bridge import codec_for
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.errors import DuruError, UsageError
from duru.local import DeviceStore
from duru.local.db import Database
from duru.model import ENTITIES, Entity, new_id
from duru.remote.layout import server_table
from duru.sync import inbox
from duru.sync.protocol import Change
from duru.sync.wire import decode_row, encode_row

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def keys() -> AccountKeys:
    return new_account("pass phrase", new_id(), KdfParams.for_tests())[0]


def _general(ent: Entity, wire: dict[str, Any], keys: AccountKeys) -> Any:
    codec = codec_for(ent)
    try:
        return codec.to_local(decode_row(server_table(ent), wire, codec.columns), keys)
    except DuruError as exc:
        return (type(exc), exc.message)


def _fast(ent: Entity, wire: dict[str, Any], keys: AccountKeys) -> Any:
    try:
        return codec_for(ent).from_wire(wire, keys)
    except DuruError as exc:
        return (type(exc), exc.message)


def _wire(ent: Entity, row: dict[str, Any], keys: AccountKeys) -> dict[str, Any]:
    return encode_row(server_table(ent), codec_for(ent).to_remote(row, keys, keys.user_id))


@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@SETTINGS
@given(data=st.data())
def test_a_genuine_row_opens_the_one_pass_way_to_the_same_row(
    ent: Entity, keys: AccountKeys, data: Any
) -> None:
    row = data.draw(rows(ent))
    wire = _wire(ent, row, keys)
    fast = codec_for(ent).from_wire(wire, keys)
    assert fast is not None, "a row as the wire writes it must not need the general way"
    assert exact(fast) == exact(row) == exact(_general(ent, wire, keys))


_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
# For each column type, what a server could send that is near the form it writes.
_NEAR: dict[str, list[Any]] = {
    "uuid": [
        _UUID,
        _UUID.upper(),
        "{" + _UUID + "}",
        _UUID.replace("-", ""),
        "urn:uuid:" + _UUID,
        _UUID[:-1] + "g",
        _UUID + " ",
    ],
    "timestamp with time zone": [
        "2023-01-03T21:05:16.407+00:00",
        "2023-01-03T21:05:16.407000+00:00",
        "2023-01-03T21:05:16.407001+00:00",
        "2023-01-03T21:05:16+00:00",
        "2023-01-03 21:05:16.407+00:00",
        "2023-01-03T21:05:16.407Z",
        "2023-01-03T23:05:16.407+02:00",
        "2023-01-03T21:05:16.407",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999+00:00",
        "2023-13-03T21:05:16.407+00:00",
        "20230103T210516+00:00",
        "2023-01-03+00:00",
    ],
    "bytea": ["AAAA", "AA==", "AA=", "AA===", "A A=", "AA\n==", "-_-_", "é==", ""],
    "bigint": [2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 1.0, True, 0, "1"],
    "boolean": [0, 1, "true", None, True, False],
    "text": ["text\x00nul", "lone \ud800 surrogate", "note", "NOTE", "todo", "", 1],
}
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _odd(ent: Entity, column: str) -> st.SearchStrategy[Any]:
    col = server_table(ent).column(column)
    assert col is not None
    return st.one_of(st.sampled_from(_NEAR[col.type]), _ANY)


@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_an_odd_value_opens_the_same_or_takes_the_general_way(
    ent: Entity, keys: AccountKeys, data: Any
) -> None:
    wire = _wire(ent, data.draw(rows(ent)), keys)
    column = data.draw(st.sampled_from(sorted(wire)))
    if data.draw(st.booleans()):
        wire[column] = data.draw(_odd(ent, column))
    else:
        del wire[column]
        if data.draw(st.booleans()):
            wire["other_column"] = None
    fast = _fast(ent, wire, keys)
    if fast is not None:
        general = _general(ent, wire, keys)
        if isinstance(fast, tuple):
            assert fast == general
        else:
            assert not isinstance(general, tuple), general
            assert exact(fast) == exact(general)


def test_a_value_swapped_between_rows_is_caught_by_the_mac(keys: AccountKeys) -> None:
    """The one-pass way checks the MAC as the general way does: a plain value from another
    row of the same user is refused, naming the row."""
    ent = ENTITIES[0]
    codec = codec_for(ent)
    one = {f.name: None for f in ent.fields}
    first = codec.from_wire(_wire(ent, _note(one), keys), keys)
    assert first is not None
    wire = _wire(ent, _note(one), keys)
    other = _wire(ent, {**_note(one), "is_pinned": 1}, keys)
    wire["is_pinned"] = other["is_pinned"]
    got = _fast(ent, wire, keys)
    assert isinstance(got, tuple) and got == _general(ent, wire, keys)
    assert got[0].__name__ == "TamperedRow" and wire["id"] in got[1]


def _note(template: dict[str, Any]) -> dict[str, Any]:
    return {
        **template,
        "id": new_id(),
        "title": "t",
        "body": "b",
        "note_type": 0,
        "is_pinned": 0,
        "deleted": 0,
        "created_at": 1,
        "updated_at": 2,
        "version": 0,
        "metadata": None,
    }


# -- the way out: to_wire against encode_row(to_remote(...)) ----------------------------


def _sealed_columns(ent: Entity) -> set[str]:
    return {c.name for c in server_table(ent).columns if c.type == "bytea"}


def _general_out(ent: Entity, row: dict[str, Any], keys: AccountKeys) -> Any:
    try:
        return _wire(ent, row, keys)
    except DuruError as exc:
        return (type(exc), exc.message)


def _fast_out(ent: Entity, row: dict[str, Any], keys: AccountKeys) -> Any:
    try:
        return codec_for(ent).to_wire(row, keys, keys.user_id)
    except DuruError as exc:
        return (type(exc), exc.message)


def _same_but_sealed(ent: Entity, fast: dict[str, Any], general: dict[str, Any]) -> None:
    """Equal in every plain column (ciphertexts differ: each seal takes a new nonce)."""
    assert list(fast) == list(general)
    sealed = _sealed_columns(ent)
    assert {k: v for k, v in fast.items() if k not in sealed} == {
        k: v for k, v in general.items() if k not in sealed
    }
    assert {k for k, v in fast.items() if v is None} == {k for k, v in general.items() if v is None}


@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@SETTINGS
@given(data=st.data())
def test_a_stored_row_writes_the_one_pass_way_as_the_general_way_does(
    ent: Entity, keys: AccountKeys, data: Any
) -> None:
    row = data.draw(rows(ent))
    fast = codec_for(ent).to_wire(row, keys, keys.user_id)
    assert fast is not None, "a row in its stored form must not need the general way"
    _same_but_sealed(ent, fast, _wire(ent, row, keys))
    # Opened the general way, with the MAC checked by the encoders of row_mac: the bytes
    # the one-pass writer hashed are the bytes the columns hold.
    assert exact(_general(ent, fast, keys)) == exact(row)


_ODD_STORED = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            2,
            -1,
            2**63,
            -(2**63) - 1,
            1.0,
            "1",
            _UUID.upper(),
            "{" + _UUID + "}",
            "nul\x00",
            "lone \ud800",
            -62135596800001,
            253402300800000,
        ]
    ),
    _ANY,
)


@pytest.mark.parametrize("ent", ENTITIES, ids=lambda e: e.name)
@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_an_odd_stored_value_writes_the_same_or_takes_the_general_way(
    ent: Entity, keys: AccountKeys, data: Any
) -> None:
    row = data.draw(rows(ent))
    row[data.draw(st.sampled_from(sorted(row)))] = data.draw(_ODD_STORED)
    fast = _fast_out(ent, row, keys)
    if fast is None:
        return
    general = _general_out(ent, row, keys)
    if isinstance(fast, tuple):
        assert fast == general
    else:
        assert not isinstance(general, tuple), general
        _same_but_sealed(ent, fast, general)


# -- what a hostile server sends that the general way refuses: the same refusal --------


def _device(tmp_path: Path, keys: AccountKeys) -> tuple[Database, Change]:
    """A device database, and a genuine upsert to apply on a page with a bad one."""
    with DeviceStore.open(tmp_path / "device.db"):
        pass
    db = Database.open(tmp_path / "device.db")
    inbox.ensure_tables(db)
    ent = ENTITIES[0]
    row = _note({f.name: None for f in ent.fields})
    good = Change(1, ent.name, "upsert", row["id"], 1, _wire(ent, row, keys))
    return db, good


def _applied(db: Database, keys: AccountKeys, page: list[Change]) -> list[str]:
    """Apply ``page`` as a pull does; the reasons its quarantined rows were kept for."""
    inbox.apply_page(db, keys, page, 7, inbox.Applied())
    assert inbox.cursor(db) == 7
    return [r for (r,) in db.conn.execute("SELECT reason FROM quarantine WHERE source = 'sync'")]


@pytest.mark.parametrize("row", [[], ["x"], "row", 5, True], ids=repr)
def test_a_row_that_is_not_a_json_object_is_refused_as_the_general_way_refuses_it(
    tmp_path: Path, keys: AccountKeys, row: Any
) -> None:
    """The general way refuses it (UsageError), and the row is quarantined while the rest of
    the page goes in; the one-pass way must not stop the pull with an AttributeError."""
    ent = ENTITIES[0]
    assert codec_for(ent).from_wire(row, keys) is None
    bad = Change(2, ent.name, "upsert", new_id(), 1, row)
    db, good = _device(tmp_path, keys)
    with db:
        assert _applied(db, keys, [good, bad]) == [
            f"UsageError: a {server_table(ent).name} row must be a JSON object"
        ]
        assert db.find(ent, good.row_id) is not None


# Python 3.11's datetime.fromisoformat reads a date with an offset and no time as a naive
# datetime (the offset dropped), which the general way refuses: "a time must carry its UTC
# offset".
@pytest.mark.parametrize("value", ["2023-01-03+00:00", "20230103+00:00", "2023-W01-2+00:00"])
def test_a_date_without_a_time_takes_the_general_way_and_is_refused(
    tmp_path: Path, keys: AccountKeys, value: str
) -> None:
    ent = ENTITIES[0]
    row = _note({f.name: None for f in ent.fields})
    wire = {**_wire(ent, row, keys), "created_at": value}
    assert _fast(ent, wire, keys) is None
    assert _general(ent, wire, keys) == (
        UsageError,
        f"{server_table(ent).name}.created_at: a time must carry its UTC offset",
    )
    db, good = _device(tmp_path, keys)
    bad = Change(2, ent.name, "upsert", row["id"], 1, wire)
    with db:
        (reason,) = _applied(db, keys, [good, bad])
        assert "a time must carry its UTC offset" in reason
        assert db.find(ent, row["id"]) is None
