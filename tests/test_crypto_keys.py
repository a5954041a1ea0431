"""Subkeys, the key ring and blind indexes."""

from __future__ import annotations

import os
import unicodedata

import nacl.encoding
import nacl.hash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duru.crypto import BLIND_INDEX_BYTES, BlindIndexKey, FieldKey, KeyRing
from duru.crypto.framing import frame
from duru.errors import UsageError

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))


def libsodium_blake2b(message: bytes, *, key: bytes, person: bytes, salt: bytes = b"") -> bytes:
    return bytes(
        nacl.hash.blake2b(
            message,
            digest_size=32,
            key=key,
            person=person,
            salt=salt,
            encoder=nacl.encoding.RawEncoder,
        )
    )


def test_field_key_is_libsodium_blake2b_of_the_master_key() -> None:
    key = FieldKey.derive(MASTER, 3)
    expected = libsodium_blake2b(
        b"", key=MASTER, person=b"duru/field/v1", salt=(3).to_bytes(4, "big")
    )
    assert key.key_id == 3 and key.secret == expected


def test_subkeys_differ_by_purpose_key_id_and_master() -> None:
    secrets = {
        FieldKey.derive(MASTER, 1).secret,
        FieldKey.derive(MASTER, 2).secret,
        FieldKey.derive(OTHER_MASTER, 1).secret,
        BlindIndexKey.derive(MASTER).secret,
        BlindIndexKey.derive(OTHER_MASTER).secret,
    }
    assert len(secrets) == 5


@pytest.mark.parametrize("key_id", [-1, 2**32, "1", True])
def test_key_id_must_be_a_32_bit_unsigned_int(key_id: object) -> None:
    with pytest.raises(UsageError):
        FieldKey(key_id, os.urandom(32))  # type: ignore[arg-type]


def test_field_key_must_be_32_bytes() -> None:
    with pytest.raises(UsageError):
        FieldKey(1, b"short")


def test_key_ring_current_and_lookup() -> None:
    one, two = FieldKey.generate(1), FieldKey.generate(2)
    ring = KeyRing([one, two])
    assert ring.current is two  # the highest id unless told otherwise
    assert KeyRing([one, two], current=1).current is one
    assert ring.get(1) is one and ring.get(9) is None
    assert ring.key_ids == (1, 2) and len(ring) == 2 and 1 in ring and 9 not in ring
    three = FieldKey.generate(3)
    assert ring.with_key(three).current is three
    assert ring.with_key(three, make_current=False).current is two
    assert ring.current is two  # the original ring is unchanged


@pytest.mark.parametrize(
    "keys, current",
    [
        ([], None),
        ([FieldKey(1, bytes(32)), FieldKey(1, bytes(32))], None),
        ([FieldKey(1, bytes(32))], 2),
    ],
    ids=["empty", "duplicate id", "current not held"],
)
def test_key_ring_rejects(keys: list[FieldKey], current: int | None) -> None:
    with pytest.raises(UsageError):
        KeyRing(keys, current=current)


def test_reprs_hold_no_secrets() -> None:
    key = FieldKey.derive(MASTER, 1)
    index_key = BlindIndexKey.derive(MASTER)
    for obj, secret in (
        (key, key.secret),
        (KeyRing([key]), key.secret),
        (index_key, index_key.secret),
    ):
        text = repr(obj)
        assert repr(secret) not in text and secret.hex() not in text
    assert repr(KeyRing([key])) == "KeyRing(key_ids=[1], current=1)"


def test_blind_index_is_libsodium_keyed_blake2b() -> None:
    key = BlindIndexKey.derive(MASTER)
    expected = libsodium_blake2b(
        frame("note_tag", "tag", "work"), key=key.secret, person=b"duru/blind/v1"
    )
    assert key.blind_index("work", entity="note_tag", field="tag") == expected
    assert len(expected) == BLIND_INDEX_BYTES


def test_blind_index_is_stable_per_account_and_differs_across() -> None:
    mine, again, theirs = (BlindIndexKey.derive(m) for m in (MASTER, MASTER, OTHER_MASTER))
    value = {"entity": "note_tag", "field": "tag"}
    assert mine.blind_index("work", **value) == again.blind_index("work", **value)
    assert mine.blind_index("work", **value) != theirs.blind_index("work", **value)


def test_blind_index_separates_entity_and_field() -> None:
    key = BlindIndexKey.derive(MASTER)
    indexes = {
        key.blind_index("work", entity="note_tag", field="tag"),
        key.blind_index("work", entity="note_tag", field="label"),
        key.blind_index("work", entity="folder", field="tag"),
        key.blind_index("tag:work", entity="note_", field=""),
    }
    assert len(indexes) == 4


def test_blind_index_normalises_nothing() -> None:
    key = BlindIndexKey.derive(MASTER)
    variants = ["Café", "café", "café ", unicodedata.normalize("NFD", "café")]
    indexes = {key.blind_index(v, entity="note_tag", field="tag") for v in variants}
    assert len(indexes) == len(variants)


@settings(max_examples=200, deadline=None)
@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_blind_index_equal_iff_values_equal(a: str, b: str) -> None:
    key = BlindIndexKey.derive(MASTER)
    same = key.blind_index(a, entity="note_tag", field="tag") == key.blind_index(
        b, entity="note_tag", field="tag"
    )
    assert same == (a == b)


def test_blind_index_rejects_non_text() -> None:
    key = BlindIndexKey.derive(MASTER)
    with pytest.raises(UsageError):
        key.blind_index(b"work", entity="note_tag", field="tag")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        key.blind_index("\udcff", entity="note_tag", field="tag")
