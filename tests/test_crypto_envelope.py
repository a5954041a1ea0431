"""Sealed envelopes: round trips, misplacement, tampering, truncation, versions, rotation."""

from __future__ import annotations

import hashlib
import struct
import uuid

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from duru.crypto import (
    ENVELOPE_VERSION,
    MIN_ENVELOPE_BYTES,
    FieldKey,
    KeyRing,
    binding_tag,
    open_sealed,
    seal,
)
from duru.crypto.envelope import padded_size
from duru.crypto.framing import frame, frame_place
from duru.errors import (
    CryptoError,
    MalformedEnvelope,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnknownEnvelopeVersion,
    UnknownKey,
    UsageError,
)

USER = "5b0e2f52-8a3c-4f0e-9a57-0c6b6f1d2e11"
ROW = "0f8c7d6e-1234-4abc-8def-0123456789ab"
PLACE = {"entity": "note", "field": "title", "user_id": USER, "row_id": ROW}
RING = KeyRing([FieldKey.generate(1)])

# Header layout as documented in duru/crypto/envelope.py.
VERSION_AT, KEY_ID_AT, BINDING_AT, NONCE_AT, SEALED_AT = 0, 1, 5, 13, 37


def sealed(plaintext: bytes = b"groceries: eggs, milk", ring: KeyRing = RING) -> bytes:
    return seal(plaintext, keys=ring, **PLACE)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=4096))
@example(plaintext=b"")
@example(plaintext=bytes(range(256)) * 800)  # 200 KB
@example(plaintext=b"\x80" * 3_000_001)  # 3 MB of markers: its padding is no slice of a constant
@example(plaintext=b"ends in zeros\x00\x00")
def test_round_trip(plaintext: bytes) -> None:
    envelope = sealed(plaintext)
    assert len(envelope) == MIN_ENVELOPE_BYTES + padded_size(len(plaintext))
    assert open_sealed(envelope, keys=RING, **PLACE) == plaintext


@settings(max_examples=100, deadline=None)
@given(
    entity=st.text(min_size=1, max_size=20),
    field=st.text(min_size=1, max_size=20),
    user_id=st.text(min_size=1, max_size=40),
    row_id=st.text(min_size=1, max_size=40),
    plaintext=st.binary(max_size=64),
)
def test_round_trip_any_place(
    entity: str, field: str, user_id: str, row_id: str, plaintext: bytes
) -> None:
    place = {"entity": entity, "field": field, "user_id": user_id, "row_id": row_id}
    envelope = seal(plaintext, keys=RING, **place)
    assert open_sealed(envelope, keys=RING, **place) == plaintext


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.text(max_size=12), min_size=4, max_size=4))
def test_cached_place_framing_equals_plain_framing(parts: list[str]) -> None:
    assert frame_place(*parts) == frame(*parts)


def test_layout_matches_the_documentation() -> None:
    """An independent reader following the documented layout can open an envelope."""
    plaintext = b"layout check"
    envelope = sealed(plaintext)
    version, key_id = struct.unpack(">BI", envelope[:5])
    assert (version, key_id) == (ENVELOPE_VERSION, 1)
    place = frame(PLACE["entity"], PLACE["field"], USER, ROW)
    expected_tag = hashlib.blake2b(place, digest_size=8, person=b"duru/bind/v1").digest()
    assert envelope[BINDING_AT:NONCE_AT] == expected_tag == binding_tag("note", "title", USER, ROW)
    opened = crypto_aead_xchacha20poly1305_ietf_decrypt(
        envelope[SEALED_AT:],
        envelope[:NONCE_AT] + place,
        envelope[NONCE_AT:SEALED_AT],
        RING.current.secret,
    )
    assert opened == plaintext + b"\x80" + bytes(64 - len(plaintext) - 1)


def test_sealing_twice_gives_different_envelopes() -> None:
    first, second = sealed(b"same"), sealed(b"same")
    assert first != second
    assert first[NONCE_AT:SEALED_AT] != second[NONCE_AT:SEALED_AT]


@pytest.mark.parametrize(
    "moved_to",
    [
        {"row_id": "0f8c7d6e-1234-4abc-8def-0123456789ac"},
        {"field": "body"},
        {"entity": "folder"},
        {"user_id": "9d1c4f00-0000-4000-8000-000000000001"},
    ],
    ids=["another row", "another field", "another entity", "another user"],
)
def test_moved_envelope_is_misplaced(moved_to: dict[str, str]) -> None:
    envelope = sealed()
    with pytest.raises(MisplacedCiphertext) as info:
        open_sealed(envelope, keys=RING, **{**PLACE, **moved_to})
    message = str(info.value)
    target = {**PLACE, **moved_to}
    assert f"{target['entity']}.{target['field']}" in message and target["row_id"] in message


def test_moved_to_another_users_row_with_their_keys_is_misplaced() -> None:
    """Another user's ring also has key id 1, but a different key."""
    theirs = KeyRing([FieldKey.generate(1)])
    other = {**PLACE, "user_id": str(uuid.uuid4()), "row_id": str(uuid.uuid4())}
    with pytest.raises(MisplacedCiphertext):
        open_sealed(sealed(), keys=theirs, **other)


def test_place_parts_cannot_slide_into_each_other() -> None:
    envelope = seal(b"x", keys=RING, entity="note", field="ab", user_id="c", row_id="r")
    with pytest.raises(MisplacedCiphertext):
        open_sealed(envelope, keys=RING, entity="note", field="a", user_id="bc", row_id="r")


def test_every_bit_flip_is_detected_with_the_documented_error() -> None:
    envelope = sealed(b"sixteen bytes!!!")
    for bit in range(len(envelope) * 8):
        byte = bit // 8
        if byte < KEY_ID_AT:
            expected: type[CryptoError] = UnknownEnvelopeVersion
        elif byte < BINDING_AT:
            expected = UnknownKey  # the ring holds only key id 1
        elif byte < NONCE_AT:
            expected = MisplacedCiphertext  # documented: a bad tag reads as a move
        else:
            expected = TamperedCiphertext  # nonce, ciphertext or Poly1305 tag
        with pytest.raises(expected):
            open_sealed(flip(envelope, bit), keys=RING, **PLACE)


def test_flipped_key_id_naming_a_held_key_is_tampered() -> None:
    ring = RING.with_key(FieldKey.generate(0), make_current=False)
    envelope = sealed(ring=ring)
    with pytest.raises(TamperedCiphertext):
        open_sealed(flip(envelope, (KEY_ID_AT + 3) * 8), keys=ring, **PLACE)  # id 1 -> 0


def test_wrong_key_with_the_right_id_is_tampered() -> None:
    impostor = KeyRing([FieldKey.generate(1)])
    with pytest.raises(TamperedCiphertext, match="note.title row"):
        open_sealed(sealed(), keys=impostor, **PLACE)


def test_every_truncation_below_the_minimum_is_malformed() -> None:
    envelope = sealed(b"")
    assert len(envelope) == MIN_ENVELOPE_BYTES + 64
    for length in range(MIN_ENVELOPE_BYTES):
        with pytest.raises(MalformedEnvelope, match=f"{length} bytes"):
            open_sealed(envelope[:length], keys=RING, **PLACE)


def test_truncation_above_the_minimum_is_tampered() -> None:
    envelope = sealed(b"a longer plaintext")
    for length in range(MIN_ENVELOPE_BYTES, len(envelope)):
        with pytest.raises(TamperedCiphertext):
            open_sealed(envelope[:length], keys=RING, **PLACE)


def test_appended_bytes_are_tampered() -> None:
    with pytest.raises(TamperedCiphertext):
        open_sealed(sealed() + b"\x00", keys=RING, **PLACE)


@pytest.mark.parametrize("version", [0, 3, 255])
def test_unknown_version(version: int) -> None:
    envelope = bytes([version]) + sealed()[1:]
    with pytest.raises(UnknownEnvelopeVersion, match=f"version {version}"):
        open_sealed(envelope, keys=RING, **PLACE)
    with pytest.raises(UnknownEnvelopeVersion):
        open_sealed(envelope[:10], keys=RING, **PLACE)


def test_unknown_key_id() -> None:
    envelope = sealed(ring=KeyRing([FieldKey.generate(7)]))
    with pytest.raises(UnknownKey, match="key id 7"):
        open_sealed(envelope, keys=RING, **PLACE)


def test_rotation_keeps_old_envelopes_readable() -> None:
    old_ring = KeyRing([FieldKey.generate(1)])
    old = seal(b"before rotation", keys=old_ring, **PLACE)
    new_ring = old_ring.with_key(FieldKey.generate(2))
    new = seal(b"after rotation", keys=new_ring, **PLACE)
    assert struct.unpack(">I", old[1:5]) == (1,)
    assert struct.unpack(">I", new[1:5]) == (2,)
    assert open_sealed(old, keys=new_ring, **PLACE) == b"before rotation"
    assert open_sealed(new, keys=new_ring, **PLACE) == b"after rotation"
    with pytest.raises(UnknownKey):
        open_sealed(new, keys=old_ring, **PLACE)


def test_buffers_are_accepted_and_other_types_are_not() -> None:
    envelope = sealed(b"buffer")
    assert open_sealed(memoryview(envelope), keys=RING, **PLACE) == b"buffer"
    assert open_sealed(bytearray(envelope), keys=RING, **PLACE) == b"buffer"
    with pytest.raises(MalformedEnvelope):
        open_sealed(60, keys=RING, **PLACE)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        seal("text", keys=RING, **PLACE)  # type: ignore[arg-type]


def test_non_text_place_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        seal(b"x", keys=RING, **{**PLACE, "row_id": uuid.UUID(ROW)})  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        seal(b"x", keys=RING, **{**PLACE, "row_id": "\ud800"})
    with pytest.raises(UsageError):
        seal(b"x", keys=RING, **{**PLACE, "entity": ["note"]})  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        open_sealed(sealed(), keys=RING, **{**PLACE, "user_id": 7})  # type: ignore[arg-type]


# -- size buckets (format version 2) ----------------------------------------------------


def test_values_of_one_bucket_have_envelopes_of_one_length() -> None:
    """The server cannot tell "ok" from a 63-byte title, nor 65 bytes from 128."""
    for group in ([b"", b"ok", "東京の会議 🎉".encode(), b"x" * 63], [b"y" * 64, b"z" * 127]):
        assert len({len(sealed(p)) for p in group}) == 1, [len(p) for p in group]
    assert len(sealed(b"x" * 63)) < len(sealed(b"x" * 64))


@pytest.mark.parametrize(
    ("length", "bucket"),
    [(0, 64), (63, 64), (64, 128), (127, 128), (128, 256), (1023, 1024), (1024, 1088)]
    + [(4096, 4352), (5_000_000, 5_111_808)],
)
def test_buckets(length: int, bucket: int) -> None:
    assert padded_size(length) == bucket


@settings(max_examples=300, deadline=None)
@given(length=st.integers(min_value=0, max_value=1 << 34))
def test_buckets_hold_the_value_and_its_marker_and_cost_at_most_12_percent_above_1k(
    length: int,
) -> None:
    size = padded_size(length)
    assert size >= length + 1 and size >= padded_size(max(0, length - 1))
    if length >= 1024:
        assert size <= (length + 1) * 1.12


def _v1_envelope(plaintext: bytes, version: int = 1) -> bytes:
    """A version-1 envelope (no padding) made by an independent writer from the layout."""
    place = frame(PLACE["entity"], PLACE["field"], USER, ROW)
    header = struct.pack(">BI", version, 1) + binding_tag("note", "title", USER, ROW)
    nonce = bytes(range(24))
    return (
        header
        + nonce
        + crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, header + place, nonce, RING.current.secret
        )
    )


def test_envelopes_of_version_1_still_open_and_cannot_be_relabelled() -> None:
    assert ENVELOPE_VERSION == 2
    for plaintext in (b"", b"written before size buckets", b"ends in a marker\x80\x00"):
        assert open_sealed(_v1_envelope(plaintext), keys=RING, **PLACE) == plaintext
    with pytest.raises(TamperedCiphertext):  # the version byte is authenticated
        open_sealed(b"\x02" + _v1_envelope(b"x")[1:], keys=RING, **PLACE)
    with pytest.raises(TamperedCiphertext):
        open_sealed(b"\x01" + sealed(b"x")[1:], keys=RING, **PLACE)


def test_padding_that_is_not_a_marker_then_zeros_is_refused() -> None:
    for padded in (b"no marker", b"", b"marker then junk\x80\x00\x01"):
        with pytest.raises(MalformedEnvelope, match="padding"):
            open_sealed(_v1_envelope(padded, version=2), keys=RING, **PLACE)
    assert open_sealed(_v1_envelope(b"ok\x80\x00\x00", version=2), keys=RING, **PLACE) == b"ok"
