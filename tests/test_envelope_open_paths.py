"""``open_sealed`` calls libsodium without PyNaCl's checks when it can: both paths give the
same plaintext for a good envelope and refuse the same tampered ones."""

from __future__ import annotations

import os

import pytest

from duru.crypto import envelope
from duru.crypto.keys import FieldKey, KeyRing


def test_the_raw_and_the_checked_decrypt_agree() -> None:
    if envelope._RAW_DECRYPT is None:
        pytest.skip("this PyNaCl has no nacl._sodium")
    ring = KeyRing([FieldKey.generate(1)])
    for size in (0, 1, 63, 64, 1000, 5000):
        plain = os.urandom(size)
        sealed = envelope.seal(
            plain, keys=ring, entity="note", field="title", user_id="u", row_id="r"
        )
        parts = (
            sealed[envelope._NONCE_END :],
            sealed[: envelope.HEADER_BYTES] + envelope.frame_place("note", "title", "u", "r"),
            sealed[envelope.HEADER_BYTES : envelope._NONCE_END],
            ring.current.secret,
        )
        raw, checked = envelope._RAW_DECRYPT(*parts), envelope._checked_decrypt(*parts)
        assert raw == checked and raw is not None and raw.startswith(plain)
        flipped = (bytes([parts[0][0] ^ 1]) + parts[0][1:], *parts[1:])
        assert envelope._RAW_DECRYPT(*flipped) is None
        assert envelope._checked_decrypt(*flipped) is None
        other_place = (parts[0], parts[1] + b"x", *parts[2:])
        assert envelope._RAW_DECRYPT(*other_place) is None
