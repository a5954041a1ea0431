"""The bridge, value by value: conversions, refusals, sealing and its bindings."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from psycopg.types.json import Jsonb

import duru.bridge
from duru.bridge import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    account_record,
    account_row,
    codec_for,
    datetime_to_ms,
    ms_to_datetime,
    to_local,
    to_remote,
)
from duru.crypto import AccountKeys, KdfParams, new_account, seal, unlock
from duru.errors import (
    BridgeError,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnknownEnumValue,
    UsageError,
)
from duru.model import (
    ENTITIES,
    NOTE,
    NOTE_LINK,
    NOTE_TAG,
    PROPS_COLUMN,
    REMINDER,
    TASK,
    Entity,
    Field,
    Kind,
    Row,
    complete_row,
    new_id,
)
from duru.model.types import EnumType
from duru.remote.layout import SERVER_ONLY_COLUMNS, server_columns

NOW = 1_700_000_000_123


@pytest.fixture(scope="module")
def account() -> tuple[AccountKeys, object]:
    return new_account("correct horse", new_id(), KdfParams.for_tests())


@pytest.fixture(scope="module")
def keys(account: tuple[AccountKeys, object]) -> AccountKeys:
    return account[0]


def _note(**values: object) -> Row:
    return complete_row(NOTE, {"id": new_id(), "title": "t", **values}, NOW)


def _task(**values: object) -> Row:
    return complete_row(TASK, {"id": new_id(), "note_id": new_id(), "content": "c", **values}, NOW)


def test_exported_names_are_sorted_and_importable() -> None:
    assert duru.bridge.__all__ == sorted(duru.bridge.__all__)
    for name in duru.bridge.__all__:
        assert getattr(duru.bridge, name) is not None


def test_codec_columns_are_the_server_layout_without_bookkeeping() -> None:
    for e in ENTITIES:
        want = [c.name for c in server_columns(e) if c.name not in SERVER_ONLY_COLUMNS]
        assert list(codec_for(e).columns) == want


def test_a_note_crosses_with_its_secrets_sealed(keys: AccountKeys) -> None:
    row = _note(title="Groceries", body="milk", metadata='{"b":1,"a":[1.0,2]}', is_pinned=True)
    remote = to_remote(NOTE, row, keys, keys.user_id)
    assert remote["user_id"] == uuid.UUID(keys.user_id)
    assert remote["id"] == uuid.UUID(row["id"])
    assert remote["is_pinned"] is True and remote["note_type"] == "note"
    assert remote["created_at"] == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert isinstance(remote["title_enc"], bytes) and b"Groceries" not in remote["title_enc"]
    assert b"milk" not in remote[PROPS_COLUMN]
    assert set(remote) == set(codec_for(NOTE).columns)
    back = to_local(NOTE, remote, keys)
    assert back == row
    assert back["metadata"] == '{"b":1,"a":[1.0,2]}'  # byte for byte, key order kept


def test_every_enum_value_maps_both_ways(keys: AccountKeys) -> None:
    for status in ("open", "in_progress", "completed", "cancelled"):
        for priority in ("low", "medium", "high", "urgent"):
            row = _task(status=status, priority=priority)
            remote = to_remote(TASK, row, keys, keys.user_id)
            assert (remote["status"], remote["priority"]) == (status, priority)
            assert to_local(TASK, remote, keys) == row
    for kind in REMINDER.field("type").enum.names:
        for pattern in REMINDER.field("recurrence_pattern").enum.names:
            row = complete_row(
                REMINDER,
                {"id": new_id(), "note_id": new_id(), "type": kind, "recurrence_pattern": pattern},
                NOW,
            )
            remote = to_remote(REMINDER, row, keys, keys.user_id)
            assert (remote["type"], remote["recurrence_pattern"]) == (kind, pattern)
            assert to_local(REMINDER, remote, keys) == row


def test_an_unknown_enum_value_is_refused_both_ways(keys: AccountKeys) -> None:
    row = _task()
    row["status"] = 9
    with pytest.raises(UnknownEnumValue, match=r"task\.status .*9 is not a task_status code"):
        to_remote(TASK, row, keys, keys.user_id)
    remote = to_remote(TASK, _task(), keys, keys.user_id)
    remote["priority"] = "critical"
    with pytest.raises(UnknownEnumValue, match="'critical' is not a task_priority name"):
        to_local(TASK, remote, keys)


@pytest.mark.parametrize(
    "ms",
    [MIN_EPOCH_MS, MIN_EPOCH_MS + 1, -86_400_001, -1, 0, 1, NOW, MAX_EPOCH_MS - 1, MAX_EPOCH_MS],
)
def test_timestamps_keep_every_millisecond_from_year_1_to_9999(ms: int) -> None:
    moment = ms_to_datetime(ms)
    assert moment.tzinfo is UTC
    assert datetime_to_ms(moment) == ms
    if MIN_EPOCH_MS + 86_400_000 < ms < MAX_EPOCH_MS - 86_400_000:  # else not representable
        assert datetime_to_ms(moment.astimezone(timezone(timedelta(hours=-7)))) == ms


def test_timestamp_edges_are_the_first_and_last_millisecond_python_can_hold() -> None:
    assert ms_to_datetime(MIN_EPOCH_MS) == datetime(1, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(MAX_EPOCH_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert ms_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize("ms", [MIN_EPOCH_MS - 1, MAX_EPOCH_MS + 1, -(2**63), 2**63 - 1])
def test_timestamps_outside_year_1_to_9999_are_refused_clearly(keys: AccountKeys, ms: int) -> None:
    with pytest.raises(BridgeError, match="outside the dates the server side can carry"):
        ms_to_datetime(ms)
    with pytest.raises(BridgeError, match=r"task\.due_date .*outside the dates"):
        to_remote(TASK, _task(due_date=ms), keys, keys.user_id)


def test_a_timestamp_finer_than_a_millisecond_or_naive_is_refused() -> None:
    with pytest.raises(BridgeError, match="finer than a millisecond"):
        datetime_to_ms(datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    with pytest.raises(BridgeError, match="no time zone"):
        datetime_to_ms(datetime(2024, 1, 1))


def test_a_non_canonical_uuid_is_refused_not_rewritten(keys: AccountKeys) -> None:
    row = _note()
    row["id"] = row["id"].upper()
    with pytest.raises(BridgeError, match="not in canonical form"):
        to_remote(NOTE, row, keys, keys.user_id)


def test_a_nul_in_plaintext_text_is_refused_but_secrets_carry_it(keys: AccountKeys) -> None:
    row = complete_row(
        REMINDER, {"id": new_id(), "note_id": new_id(), "time_zone": "Europe/\x00"}, NOW
    )
    with pytest.raises(BridgeError, match=r"reminder\.time_zone .*NUL"):
        to_remote(REMINDER, row, keys, keys.user_id)
    row = _note(title="a\x00b", body="\x00")
    assert to_local(NOTE, to_remote(NOTE, row, keys, keys.user_id), keys) == row


def test_bools_ints_and_floats_cross_exactly(keys: AccountKeys) -> None:
    values = {
        "latitude": -0.0,
        "longitude": 5e-324,
        "radius": 1.7976931348623157e308,
        "snooze_count": 2**63 - 1,
        "trigger_count": -(2**63),
        "is_active": False,
    }
    row = complete_row(REMINDER, {"id": new_id(), "note_id": new_id(), **values}, NOW)
    back = to_local(REMINDER, to_remote(REMINDER, row, keys, keys.user_id), keys)
    assert back == row
    assert math.copysign(1.0, back["latitude"]) == -1.0
    assert back["is_active"] == 0 and type(back["is_active"]) is int


def test_a_nonfinite_secret_float_is_refused(keys: AccountKeys) -> None:
    row = complete_row(REMINDER, {"id": new_id(), "note_id": new_id()}, NOW)
    row["radius"] = math.inf
    with pytest.raises(BridgeError, match=r"reminder\.radius .*not a finite float"):
        to_remote(REMINDER, row, keys, keys.user_id)


def test_null_where_the_model_forbids_it_is_refused_both_ways(keys: AccountKeys) -> None:
    row = _note()
    row["title"] = None
    with pytest.raises(BridgeError, match=r"note\.title .*may not be null"):
        to_remote(NOTE, row, keys, keys.user_id)
    remote = to_remote(NOTE, _note(), keys, keys.user_id)
    remote["is_pinned"] = None
    with pytest.raises(BridgeError, match=r"note\.is_pinned .*may not be null"):
        to_local(NOTE, remote, keys)


def test_rows_with_missing_or_unknown_fields_are_refused(keys: AccountKeys) -> None:
    row = _note()
    del row["body"]
    with pytest.raises(BridgeError, match=r"missing fields \['body'\]"):
        to_remote(NOTE, row, keys, keys.user_id)
    remote = to_remote(NOTE, _note(), keys, keys.user_id)
    remote["title"] = "plaintext on the server"
    with pytest.raises(BridgeError, match=r"unknown columns \['title'\]"):
        to_local(NOTE, remote, keys)
    remote = to_remote(NOTE, _note(), keys, keys.user_id)
    remote.update(change_seq=7, deleted_at=None)  # server bookkeeping is ignored
    assert to_local(NOTE, remote, keys)["title"] == "t"


def test_a_ciphertext_moved_to_another_row_or_field_does_not_open(keys: AccountKeys) -> None:
    a = to_remote(NOTE, _note(title="one"), keys, keys.user_id)
    b = to_remote(NOTE, _note(title="two"), keys, keys.user_id)
    b["title_enc"] = a["title_enc"]
    with pytest.raises(MisplacedCiphertext):
        to_local(NOTE, b, keys)
    c = to_remote(NOTE, _note(), keys, keys.user_id)
    c[PROPS_COLUMN] = c["title_enc"]
    with pytest.raises(MisplacedCiphertext):
        to_local(NOTE, c, keys)


def test_a_flipped_bit_is_reported_as_tampering(keys: AccountKeys) -> None:
    remote = to_remote(NOTE, _note(), keys, keys.user_id)
    sealed = bytearray(remote[PROPS_COLUMN])
    sealed[-1] ^= 1
    remote[PROPS_COLUMN] = bytes(sealed)
    with pytest.raises(TamperedCiphertext):
        to_local(NOTE, remote, keys)


def test_another_users_keys_cannot_seal_or_open(keys: AccountKeys) -> None:
    other, _ = new_account("other", new_id(), KdfParams.for_tests())
    with pytest.raises(UsageError, match="cannot seal rows of user"):
        to_remote(NOTE, _note(), other, keys.user_id)
    remote = to_remote(NOTE, _note(), keys, keys.user_id)
    with pytest.raises(TamperedCiphertext):
        to_local(NOTE, remote, other)


def test_props_sealed_by_another_model_are_refused_not_trimmed(keys: AccountKeys) -> None:
    row = _note()
    remote = to_remote(NOTE, row, keys, keys.user_id)
    props = {"body": "", "metadata": None, "mood": "sunny"}
    remote[PROPS_COLUMN] = seal(
        json.dumps(props).encode(),
        keys=keys.field_keys,
        entity="note",
        field=PROPS_COLUMN,
        user_id=keys.user_id,
        row_id=row["id"],
    )
    with pytest.raises(BridgeError, match="another model version"):
        to_local(NOTE, remote, keys)


def test_tags_get_a_blind_index_equal_within_a_user_only(keys: AccountKeys) -> None:
    note = new_id()
    tag = {"note_id": note, "tag": "Work ✨"}
    one = to_remote(
        NOTE_TAG, complete_row(NOTE_TAG, {"id": new_id(), **tag}, NOW), keys, keys.user_id
    )
    two = to_remote(
        NOTE_TAG, complete_row(NOTE_TAG, {"id": new_id(), **tag}, NOW), keys, keys.user_id
    )
    assert one["tag_hmac"] == two["tag_hmac"] and len(one["tag_hmac"]) == 32
    assert one["tag_enc"] != two["tag_enc"]
    other, _ = new_account("other", new_id(), KdfParams.for_tests())
    three = to_remote(
        NOTE_TAG, complete_row(NOTE_TAG, {"id": new_id(), **tag}, NOW), other, other.user_id
    )
    assert three["tag_hmac"] != one["tag_hmac"]


def test_a_blind_index_that_does_not_match_its_value_is_refused(keys: AccountKeys) -> None:
    a = complete_row(NOTE_TAG, {"id": new_id(), "note_id": new_id(), "tag": "a"}, NOW)
    b = complete_row(NOTE_TAG, {"id": new_id(), "note_id": new_id(), "tag": "b"}, NOW)
    remote = to_remote(NOTE_TAG, a, keys, keys.user_id)
    remote["tag_hmac"] = to_remote(NOTE_TAG, b, keys, keys.user_id)["tag_hmac"]
    with pytest.raises(BridgeError, match="blind index tag_hmac does not match"):
        to_local(NOTE_TAG, remote, keys)


def test_a_null_target_crosses_as_null(keys: AccountKeys) -> None:
    row = complete_row(
        NOTE_LINK, {"id": new_id(), "source_id": new_id(), "target_title": "Inbox"}, NOW
    )
    remote = to_remote(NOTE_LINK, row, keys, keys.user_id)
    assert remote["target_id"] is None
    assert to_local(NOTE_LINK, remote, keys) == row


GADGET = Entity(
    "gadget",
    "gadgets",
    (
        Field("id", Kind.UUID),
        Field("data", Kind.JSON, nullable=True),
        Field("mode", EnumType("mode", (("off", 0), ("on", 7))), default="off"),
        Field("weight", Kind.FLOAT, nullable=True),
    ),
)


def test_plain_json_travels_as_jsonb_and_comes_back_as_the_same_value(keys: AccountKeys) -> None:
    row = complete_row(GADGET, {"id": new_id(), "data": {"z": [1, 2.5, "é"]}, "mode": 7}, NOW)
    remote = codec_for(GADGET).to_remote(row, keys, keys.user_id)
    assert isinstance(remote["data"], Jsonb) and remote["data"].obj == {"z": [1, 2.5, "é"]}
    assert remote["mode"] == "on"
    # As psycopg returns jsonb: already parsed.
    remote["data"] = remote["data"].obj
    assert codec_for(GADGET).to_local(remote, keys) == row
    row["data"] = '"a\\u0000b"'
    with pytest.raises(BridgeError, match="jsonb cannot store"):
        codec_for(GADGET).to_remote(row, keys, keys.user_id)


def test_the_account_record_crosses_and_still_unlocks(account: tuple[AccountKeys, object]) -> None:
    keys, record = account
    row = account_row(keys.user_id, record)  # type: ignore[arg-type]
    assert set(row) == {"user_id", "salt", "kdf_params", "wrapped_master_key", "auth_verifier"}
    assert "salt" not in row["kdf_params"].obj
    # As psycopg returns it: jsonb parsed, bytea as bytes.
    stored = {**row, "kdf_params": row["kdf_params"].obj}
    again = account_record(stored)
    assert again == record
    assert unlock("correct horse", again, keys.user_id).master_key == keys.master_key
